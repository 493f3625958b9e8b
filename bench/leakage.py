"""Leakage guard: cost of the duplicate search against feature extraction, calibration of its
threshold on planted copies of real images, and the false-flag rate of the order check.

    .venv/bin/python bench/leakage.py                 # cost over all 5000 Kather images
    .venv/bin/python bench/leakage.py --calibrate     # recall / false joins by threshold, 4 sets
    .venv/bin/python bench/leakage.py --order         # order check: planted slide order and shuffles
    .venv/bin/python bench/leakage.py --shared        # the guard on the four shared sets

Shared sets are read from ../shared/data (see its README.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from layergain.data import load_image_set
from layergain.leakage import describe_images, find_duplicates, order_check, plant_duplicates
from layergain.leakage.duplicates import _clusters, match_descriptors

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("kather2016_crc_texture", "lc25000_lung", "lc25000_colon", "idc_breast50")


def cost(n_extract: int) -> None:
    import torch

    from layergain.features import extract_features
    from layergain.models import load_backbone

    image_set = load_image_set(SHARED / "kather2016_crc_texture")
    t0 = time.perf_counter()
    desc = describe_images(image_set.paths)
    t1 = time.perf_counter()
    report = find_duplicates(image_set, descriptors=desc)
    t2 = time.perf_counter()
    print(f"duplicate search, {len(image_set)} images: descriptors {t1 - t0:.2f} s, matching {t2 - t1:.2f} s, "
          f"total {t2 - t0:.2f} s; {len(report.clusters)} clusters")
    torch.set_num_threads(2)
    backbone = load_backbone()
    sub = image_set.subset(np.arange(n_extract))
    extract_features(backbone, sub.subset(np.arange(16)))  # warm-up
    t3 = time.perf_counter()
    extract_features(backbone, sub)
    per_image = (time.perf_counter() - t3) / n_extract
    extraction = per_image * len(image_set)
    print(f"extraction (Lite0, pretrained, all probe layers, CPU, 2 threads): {1 / per_image:.1f} images/s over "
          f"{n_extract} images -> {extraction:.0f} s for {len(image_set)} images (one network)")
    print(f"ratio detection / extraction of one network: {(t2 - t0) / extraction:.3f}")


def calibrate(n_images: int, n_copies: int, seed: int) -> None:
    thresholds = (0.575, 0.6, 0.625, 0.65, 0.7)
    rng = np.random.default_rng(seed)
    for name in SETS:
        base = load_image_set(SHARED / name)
        if len(base) > n_images:
            base = base.subset(np.sort(rng.choice(len(base), size=n_images, replace=False)))
        with tempfile.TemporaryDirectory() as tmp:
            planted, original = plant_duplicates(base, tmp, n_copies=n_copies, seed=rng)
            desc = describe_images(planted.paths)
        pairs, sim, flat = match_descriptors(desc, threshold=-1.0)
        n0 = len(base)
        copies = np.arange(n0, len(planted))
        src = original[copies]
        print(f"{name}: {n0} images, {n_copies} copies, flat {flat[:n0].mean():.3f}")
        for thr in thresholds:
            cluster = _clusters(len(planted), pairs[sim >= thr])
            found = (cluster[copies] >= 0) & (cluster[copies] == cluster[src])
            nonflat = ~flat[src]
            # distinct images of one class joined: originals sharing a cluster with another original
            c0, lab = cluster[:n0], planted.labels[:n0]
            joined = np.zeros(n0, bool)
            for c in np.unique(c0[c0 >= 0]):
                members = np.flatnonzero(c0 == c)
                for lv in np.unique(lab[members]):
                    same = members[lab[members] == lv]
                    if same.size > 1:
                        joined[same] = True
            print(f"  threshold {thr:.3f}: copies found {found.mean():.3f} (non-flat originals "
                  f"{found[nonflat].mean():.3f}), distinct same-class images joined {joined.mean():.4f}")


def order(n_sim: int, seed: int) -> None:
    """False flags under shuffled order, and the flag under the slide order, on Kather colour features."""
    from layergain.leakage.descriptors import describe_images as _d  # noqa: F401

    image_set = load_image_set(SHARED / "kather2016_crc_texture", group_column="slide_id")
    rng = np.random.default_rng(seed)
    sub = image_set.subset(np.sort(rng.choice(len(image_set), size=400, replace=False)))
    x = colour_features(sub.paths)
    slide_order = np.argsort(np.argsort(sub.groups, kind="stable"), kind="stable")
    check = order_check(x, sub.labels, order=slide_order, order_name="slide order", seed=rng)
    print(f"slide order: ordered {check.ordered_accuracy:.3f}, shuffled {check.shuffled_accuracy.mean():.3f}, "
          f"p {check.p_value:.3f}, flagged {check.flagged}")
    flags = 0
    for _ in range(n_sim):
        keys = rng.permutation(len(sub))
        flags += order_check(x, sub.labels, order=keys, seed=rng).flagged
    rate = flags / n_sim
    print(f"false flags under shuffled order: {flags}/{n_sim} = {rate:.3f} (MC SE {np.sqrt(rate * (1 - rate) / n_sim):.3f})")


def colour_features(paths) -> np.ndarray:
    """Mean and SD of R, G, B on a 4 x 4 grid (96 numbers per image): cheap features with stain information."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
        cells = a.reshape(4, 8, 4, 8, 3).transpose(0, 2, 1, 3, 4).reshape(16, 64, 3)
        out.append(np.concatenate([cells.mean(1).ravel(), cells.std(1).ravel()]))
    return np.array(out)


def shared() -> None:
    for name in SETS:
        image_set = load_image_set(SHARED / name)
        t = time.perf_counter()
        report = find_duplicates(image_set)
        print(f"{name} ({len(image_set)} images, groups {image_set.group_column}): {time.perf_counter() - t:.1f} s")
        print("  " + report.summary())
        for k, members in enumerate(report.clusters):
            s = report.similarity[np.isin(report.pairs[:, 0], np.flatnonzero(report.cluster == k))]
            print(f"  cluster {k}: {', '.join(members)} (similarity {s.min():.3f}-{s.max():.3f})"
                  + (" [cross-group]" if report.cross_group and k in report.cross_group else "")
                  + (" [cross-class]" if k in report.cross_class else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--order", action="store_true")
    parser.add_argument("--shared", action="store_true")
    parser.add_argument("--n-images", type=int, default=1000)
    parser.add_argument("--n-copies", type=int, default=300)
    parser.add_argument("--n-extract", type=int, default=64)
    parser.add_argument("--n-sim", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.n_images, args.n_copies, args.seed)
    elif args.order:
        order(args.n_sim, args.seed)
    elif args.shared:
        shared()
    else:
        cost(args.n_extract)


if __name__ == "__main__":
    main()
