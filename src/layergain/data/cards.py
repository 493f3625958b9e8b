"""Data cards: which card describes an image set, and its summary for the report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from layergain.data.imageset import ImageSet
from layergain.errors import DataError

__all__ = ["DataCard", "find_data_card", "read_data_card"]

CARD_NAME = "DATA_CARD.md"


@dataclass(frozen=True)
class DataCard:
    """A data card: its id (file stem or set name), path and the text of its Summary section."""

    id: str
    path: str
    summary: str


def read_data_card(path: str | Path, card_id: str | None = None) -> DataCard:
    """Read a Markdown data card; the summary is the text under its ``## Summary`` heading."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read data card {path}: {exc}. Pass a UTF-8 Markdown file with `data_card=FILE`.") from exc
    match = re.search(r"^##\s+Summary\s*\n(.*?)(?=^#{1,2}\s|\Z)", text, flags=re.DOTALL | re.MULTILINE)
    summary = " ".join(match.group(1).split()) if match else ""
    return DataCard(id=card_id or path.stem, path=str(path), summary=summary)


def find_data_card(image_set: ImageSet, explicit: str | Path | None = None, search: tuple[Path, ...] = (Path("data_cards"),)) -> DataCard | None:
    """The card of ``image_set``: ``explicit``, else ``DATA_CARD.md`` beside the images, else
    ``<folder>/<set name>.md`` in one of ``search`` (the project's ``data_cards/``)."""
    if explicit is not None:
        return read_data_card(explicit)
    beside = image_set.root / CARD_NAME
    if beside.is_file():
        return read_data_card(beside, image_set.name)
    for folder in search:
        candidate = folder / f"{image_set.name}.md"
        if candidate.is_file():
            return read_data_card(candidate)
    return None
