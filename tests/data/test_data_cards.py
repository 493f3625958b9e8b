"""Data cards in data_cards/: required sections, a usable Summary, Composition counts equal to the
manifests, the packaged copy of the sample's card, and the pipeline finding each shared set's card."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from layergain.data import bundled_sample_path, find_data_card, load_image_set
from layergain.data.cards import read_data_card

REPO = Path(__file__).resolve().parents[2]
CARDS = REPO / "data_cards"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED_SETS = ("kather2016_crc_texture", "lc25000_lung", "lc25000_colon", "idc_breast50")
SAMPLE = "kather2016_sample"
REQUIRED = (
    "Summary",
    "Source and licence",
    "Collection and labelling",
    "Composition",
    "Grouping for leak-free folds",
    "Known caveats",
    "Recommended use",
)
# Composition-table column headers that count distinct values of a manifest column per class.
GROUP_HEADERS = {
    "slides": "slide_id",
    "slides in the sample": "slide_id",
    "source images": "source_image",
    "patients": "group",
    "augmentation groups": "lc25000_group",
}

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")


def sections(text: str) -> dict[str, str]:
    """``## heading`` -> the text under it, in order."""
    parts = re.split(r"^##\s+(.+?)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def first_table(section: str) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of the first Markdown table in ``section``."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert len(block) >= 3 and set("".join(block[1])) <= set("-: "), "a header, a separator and rows"
    return block[0], block[2:]


def manifest_rows(set_name: str) -> list[dict[str, str]]:
    path = bundled_sample_path() if set_name == SAMPLE else SHARED / set_name / "manifest.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def card_text(set_name: str) -> str:
    return (CARDS / f"{set_name}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("set_name", SHARED_SETS + (SAMPLE,))
def test_card_has_required_sections_and_a_short_summary(set_name):
    text = card_text(set_name)
    assert text.startswith(f"# Data card: {set_name}")
    found = sections(text)
    missing = [s for s in REQUIRED if s not in found]
    assert not missing, f"{set_name}: missing sections {missing}"
    assert [s for s in found if s in REQUIRED] == list(REQUIRED), "sections in the usual order"
    summary = found["Summary"]
    assert summary and "\n\n" not in summary, "the Summary is one non-empty paragraph"
    assert 100 <= len(summary) <= 700, f"Summary of {len(summary)} characters: keep it short"
    # the pipeline reads the same text (whitespace joined) into every run's results and report
    assert read_data_card(CARDS / f"{set_name}.md").summary == " ".join(summary.split())


@pytest.mark.parametrize("set_name", SHARED_SETS)
def test_card_cites_its_numbers_source_and_the_run_command(set_name):
    found = sections(card_text(set_name))
    assert "scripts/data_card_stats.py" in found["Composition"]
    assert f"layergain run --data ../shared/data/{set_name}" in found["Recommended use"]
    licence = found["Source and licence"]
    if set_name.startswith("kather"):
        assert "CC BY 4.0" in licence
    else:
        assert "do not redistribute" in licence and "CC BY" not in licence


def test_sample_card_is_the_packaged_copy():
    packaged = bundled_sample_path().parent / "DATA_CARD.md"
    assert (CARDS / f"{SAMPLE}.md").read_bytes() == packaged.read_bytes()


@pytest.mark.parametrize(
    "set_name", [pytest.param(s, marks=needs_shared) for s in SHARED_SETS] + [SAMPLE]
)
def test_composition_table_equals_the_manifest(set_name):
    header, body = first_table(sections(card_text(set_name))["Composition"])
    assert header[:2] == ["class", "images"]
    rows = manifest_rows(set_name)
    counts = Counter(r["label"] for r in rows)
    stated = {cells[0]: int(cells[1]) for cells in body if cells[0] != "total"}
    assert stated == dict(counts)
    totals = [cells for cells in body if cells[0] == "total"]
    if totals:
        assert int(totals[0][1]) == len(rows)
    for j, name in enumerate(header[2:], start=2):
        column = GROUP_HEADERS.get(name)
        if column is None:
            continue
        per_class = defaultdict(set)
        for r in rows:
            per_class[r["label"]].add(r[column])
        for cells in body:
            expected = len({r[column] for r in rows}) if cells[0] == "total" else len(per_class[cells[0]])
            assert int(cells[j]) == expected, f"{set_name}: {name} of {cells[0]}"


@needs_shared
@pytest.mark.parametrize("set_name", SHARED_SETS)
def test_pipeline_finds_the_card_and_its_command_loads(set_name, monkeypatch):
    monkeypatch.chdir(REPO)
    found = sections(card_text(set_name))
    command = re.search(
        rf"layergain run --data \.\./shared/data/{set_name}(?: --group-column (\S+))?\s*$",
        found["Recommended use"],
        flags=re.MULTILINE,
    )
    assert command, "Recommended use gives the exact command on a line of its own"
    group_column = command.group(1)
    path = Path("..") / "shared" / "data" / set_name
    image_set = load_image_set(path, group_column=group_column, max_per_class=3)
    assert image_set.name == set_name
    card = find_data_card(image_set, search=(Path("data_cards"),))
    assert card is not None and card.id == set_name
    assert Path(card.path).resolve() == CARDS / f"{set_name}.md"
    assert card.summary == " ".join(found["Summary"].split())
    if group_column is not None:
        full = manifest_rows(set_name)
        assert len({r[group_column] for r in full}) >= 5, "enough groups for 5-fold grouped CV"
