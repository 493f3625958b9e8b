"""Peak memory of a run against the number of images (features cached, as after `layergain extract`).

Run from the repository root:   .venv/bin/python bench/memory.py [--sizes 5000 50000]

For each N, a child process builds N tiny synthetic PNG images (2 classes), writes synthetic
features of EfficientNet-Lite0's probe layers `blocks.2.0` and `blocks.4.0` (widths 40 and 112;
`--layers blocks.4.0,bn2` for the 1280-wide head)
for the pretrained network and 2 random seeds into a fresh feature cache (under the keys the real
networks have), then runs the real `layergain.pipeline.run` (probes, similarity, statistics,
results, report; B = 200, 999 permutations, 3 folds), and reports its peak resident memory
(`ru_maxrss`) and wall time. Before the run, the child's memory after imports and image
validation is recorded too, so the increase due to N is visible.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYERS = ["blocks.2.0", "blocks.4.0"]  # default; --layers bn2 adds the 1280-wide head


def child(n: int, work: Path, layers: list[str]) -> dict:
    import numpy as np
    from PIL import Image

    from layergain.data import load_image_set
    from layergain.features import FeatureCache
    from layergain.features.extract import feature_key
    from layergain.models import load_backbone
    from layergain.pipeline import RunConfig, run

    rng = np.random.default_rng(0)
    root = work / "images"
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
    pixels = rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8)
    for i in range(n):  # distinct images (distinct checksums)
        Image.fromarray(pixels[i]).save(root / f"class{i % 2}" / f"{i:06d}.png")
    image_set = load_image_set(root)
    cache = FeatureCache(work / "cache")
    labels = image_set.labels
    for seed in (None, 0, 1):
        backbone = load_backbone(weights="pretrained" if seed is None else None, seed=seed, layers=layers)
        key = feature_key(backbone, image_size=32, pooling="avg")
        config = {"synthetic": True}
        for start in range(0, n, 4096):
            rows = np.arange(start, min(start + 4096, n))
            feats = {
                layer.name: (rng.normal(size=(rows.size, layer.width)) + 0.3 * labels[rows, None]).astype(np.float32)
                for layer in backbone.layers
            }
            cache.store(key, config, [image_set.sha256[i] for i in rows], feats)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    run(RunConfig(data=str(root), out=str(work / "out"), cache=str(work / "cache"), layers=layers, seeds=2, folds=3,
                  image_size=32, boot=200, permutations=999, jobs=1))
    return {
        "n_images": n,
        "peak_rss_mb_before_run": before / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run_seconds": time.perf_counter() - t,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--layers", default=",".join(LAYERS), help="probe-layer modules (comma-separated)")
    parser.add_argument("--child", type=int)
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work), args.layers.split(","))))
        return
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as work:
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--work", work, "--layers", args.layers],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"layers {args.layers}, N = {n:>6}: peak RSS {r['peak_rss_mb']:7.0f} MB (after imports and image checks: "
                  f"{r['peak_rss_mb_before_run']:.0f} MB), run {r['run_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
