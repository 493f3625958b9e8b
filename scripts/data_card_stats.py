"""Print the numbers of the data cards in ``data_cards/``, computed from each set's manifest and files.

Usage: python scripts/data_card_stats.py [--data ../shared/data] [--set NAME ...] [--sample N]

For every set folder (one with a ``manifest.csv``) it prints Markdown tables: images per class and
groups per class for each grouping column the manifest has, how groups spread over classes, and the
image formats, modes and sizes listed in the manifest, checked against the files with Pillow (every
file by default, or a seeded random sample of N per set with ``--sample N``; Pillow reads headers only).
Nothing is written; the cards quote this output.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Grouping columns the shared manifests use, in the order the cards discuss them, with a readable name.
GROUP_COLUMNS = {
    "slide_id": "slides",
    "source_image": "source images",
    "group": "patients",
    "lc25000_group": "augmentation groups",
}


def read_manifest(set_dir: Path) -> list[dict[str, str]]:
    with open(set_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def class_counts(rows: list[dict[str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(r["label"] for r in rows).items()))


def groups_by_class(rows: list[dict[str, str]], column: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        out[r["label"]].add(r[column])
    return out


def group_columns(rows: list[dict[str, str]]) -> list[str]:
    return [c for c in GROUP_COLUMNS if rows and c in rows[0]]


def table(header: list[str], body: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in body]
    return "\n".join(lines)


def composition_table(rows: list[dict[str, str]]) -> str:
    """Images and distinct groups per class, for each grouping column (the cards' Composition table)."""
    counts = class_counts(rows)
    columns = group_columns(rows)
    per_class = {c: groups_by_class(rows, c) for c in columns}
    body = [[label, n] + [len(per_class[c][label]) for c in columns] for label, n in counts.items()]
    body.append(["total", len(rows)] + [len({r[c] for r in rows}) for c in columns])
    return table(["class", "images"] + [GROUP_COLUMNS[c] for c in columns], body)


def spread(values: list[int]) -> str:
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}"


def group_summary(rows: list[dict[str, str]], column: str) -> str:
    """How the groups of ``column`` spread over classes, and how many images a group holds."""
    labels_of: dict[str, set[str]] = defaultdict(set)
    size: Counter[str] = Counter()
    for r in rows:
        labels_of[r[column]].add(r["label"])
        size[r[column]] += 1
    n_classes = Counter(len(v) for v in labels_of.values())
    lines = [
        f"- `{column}`: {len(labels_of)} groups; "
        f"images per group min / median / max: {spread(list(size.values()))}",
        "- groups by number of classes they hold: "
        + ", ".join(f"{k} class{'es' if k > 1 else ''}: {v}" for k, v in sorted(n_classes.items())),
    ]
    classes = sorted({r["label"] for r in rows})
    if len(classes) == 2:
        only = Counter(next(iter(v)) for v in labels_of.values() if len(v) == 1)
        lines.append(
            "- groups with one class only: "
            + ", ".join(f"{c}: {only[c]}" for c in classes)
            + f"; with both: {n_classes.get(2, 0)}"
        )
    for label in classes:
        sizes = list(Counter(r[column] for r in rows if r["label"] == label).values())
        lines.append(f"- {label}: images per group min / median / max {spread(sizes)}")
    if len(labels_of) <= 20:
        matrix = defaultdict(Counter)
        for r in rows:
            matrix[r[column]][r["label"]] += 1
        body = [[g] + [matrix[g][c] for c in classes] for g in sorted(matrix)]
        lines += ["", f"Images per {column} and class:", "", table([column] + classes, body)]
    return "\n".join(lines)


def augmentation_summary(rows: list[dict[str, str]]) -> str:
    """LC25000: how many members of each kept image's augmentation group the source copy held."""
    lines = []
    for label in sorted({r["label"] for r in rows}):
        sizes = [int(r["n_available_in_group"]) for r in rows if r["label"] == label]
        lines.append(
            f"- {label}: group members in the source copy min / median / max {spread(sizes)}, "
            f"sum {sum(sizes)} (one kept per group)"
        )
    return "\n".join(lines)


def format_summary(set_dir: Path, rows: list[dict[str, str]], sample: int | None, seed: int = 0) -> str:
    """Formats in the manifest, and the same read from the files with Pillow (headers only)."""
    listed = Counter((r["format"], r["mode"], f"{r['width']}×{r['height']}") for r in rows)
    chosen = rows if sample is None or sample >= len(rows) else random.Random(seed).sample(rows, sample)
    seen: Counter[tuple[str, str, str]] = Counter()
    mismatched = []
    for r in chosen:
        with Image.open(set_dir / r["path"]) as im:
            key = (im.format or "?", im.mode, f"{im.width}×{im.height}")
        seen[key] += 1
        if key != (r["format"], r["mode"], f"{r['width']}×{r['height']}"):
            mismatched.append(r["path"])
    sizes = [(set_dir / r["path"]).stat().st_size for r in rows]
    lines = [
        "- manifest: " + ", ".join(f"{f} {m} {s}: {n}" for (f, m, s), n in sorted(listed.items())),
        f"- Pillow, {len(chosen)} of {len(rows)} files: "
        + ", ".join(f"{f} {m} {s}: {n}" for (f, m, s), n in sorted(seen.items()))
        + f"; differing from the manifest: {len(mismatched)}",
        f"- image bytes: {sum(sizes) / 1e6:.1f} MB in all, "
        f"{statistics.median(sizes) / 1e3:.1f} kB median per file",
    ]
    lines += [f"  - differs: {p}" for p in mismatched[:10]]
    return "\n".join(lines)


def report(set_dir: Path, sample: int | None) -> str:
    rows = read_manifest(set_dir)
    parts = [f"## {set_dir.name}", "", f"{len(rows)} images, {len(class_counts(rows))} classes.", ""]
    parts += ["### Composition", "", composition_table(rows), ""]
    for column in group_columns(rows):
        parts += [f"### Grouping: {column}", "", group_summary(rows, column), ""]
    if rows and "n_available_in_group" in rows[0]:
        parts += ["### Augmentation groups", "", augmentation_summary(rows), ""]
    parts += ["### Format", "", format_summary(set_dir, rows, sample), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder of set folders (default: ../shared/data)")
    p.add_argument("--set", action="append", dest="sets", metavar="NAME", help="only this set (repeatable)")
    p.add_argument("--sample", type=int, metavar="N", help="check N files per set with Pillow instead of all")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data folder at {args.data}; pass --data", file=sys.stderr)
        return 2
    names = args.sets or sorted(d.name for d in args.data.iterdir() if (d / "manifest.csv").is_file())
    for name in names:
        print(report(args.data / name, args.sample))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
