"""Helpers shared by tests: small real image sets built from the bundled Kather sample."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from layergain.data import bundled_sample_path


def bundled_rows() -> list[dict[str, str]]:
    manifest = bundled_sample_path()
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def make_folder_set(root: Path, per_class: int = 3, classes: int | None = None) -> Path:
    """Copy real Kather tiles into ``root/<class>/`` (ImageFolder layout); returns ``root``."""
    src = bundled_sample_path().parent
    seen: dict[str, int] = {}
    for row in bundled_rows():
        label = row["label"]
        if classes is not None and label not in seen and len(seen) >= classes:
            continue
        if seen.get(label, 0) >= per_class:
            continue
        seen[label] = seen.get(label, 0) + 1
        dst = root / label / Path(row["path"]).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / row["path"], dst)
    return root
