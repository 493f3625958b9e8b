"""Build the bundled Kather 2016 sample shipped inside the package (run once; output is committed).

Usage: python scripts/make_bundled_sample.py [--source ../shared/data/kather2016_crc_texture] [--per-class 20]

Selection, per class: rows sorted by path and shuffled with random.Random(0); then slides are
visited round-robin so the sample spreads over as many slides (patients) as the class has, one tile
per source image while distinct source images last. Files are copied byte for byte (lossless PNG of the original TIFF tiles).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import shutil
from collections import defaultdict
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "src" / "layergain" / "data" / "sample" / "kather2016"


def select(rows: list[dict[str, str]], per_class: int, seed: int = 0) -> list[dict[str, str]]:
    chosen = []
    by_class: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["path"]):
        by_class[row["label"]].append(row)
    for label in sorted(by_class):
        pool = by_class[label][:]
        random.Random(seed).shuffle(pool)
        by_slide: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in pool:
            by_slide[row["slide_id"]].append(row)
        picked, used_sources, distinct = [], set(), True
        while len(picked) < per_class:
            progressed = False
            for slide in sorted(by_slide):
                candidates = [r for r in by_slide[slide] if not distinct or r["source_image"] not in used_sources]
                if candidates and len(picked) < per_class:
                    row = candidates[0]
                    by_slide[slide].remove(row)
                    used_sources.add(row["source_image"])
                    picked.append(row)
                    progressed = True
            if not progressed:
                if not distinct:
                    raise SystemExit(f"class {label}: only {len(picked)} tiles")
                distinct = False  # the class has fewer source images than tiles wanted: allow repeats
        chosen.extend(sorted(picked, key=lambda r: r["path"]))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/kather2016_crc_texture"))
    parser.add_argument("--per-class", type=int, default=20)
    args = parser.parse_args()
    with open(args.source / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = select(rows, args.per_class)
    if DEST.exists():
        shutil.rmtree(DEST)
    for row in chosen:
        src = args.source / row["path"]
        if hashlib.sha256(src.read_bytes()).hexdigest() != row["sha256"]:
            raise SystemExit(f"checksum mismatch: {src}")
        out = DEST / row["path"]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    with open(DEST / "manifest.csv", "w", newline="") as f:
        fields = ["path", "label", "group", "slide_id", "source_image", "sha256"]
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in chosen:
            writer.writerow({**{k: row[k] for k in fields if k != "group"}, "group": row["slide_id"]})
    total = sum(p.stat().st_size for p in DEST.rglob("*") if p.is_file())
    print(f"{len(chosen)} images, {total / 1e6:.2f} MB -> {DEST}")


if __name__ == "__main__":
    main()
