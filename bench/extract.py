"""Feature extraction speed: plain forward passes against layergain's extraction of every probe layer.

Run from the repository root:   .venv/bin/python bench/extract.py [--images 64] [--repeats 3]

Compares, on the same bundled images at 224 px, each measured `--repeats` times interleaved
(this machine is shared; the median of each is reported, and ratios come from the same run):

- naive       plain forward pass: eager, NCHW, float32, torch.no_grad, default threads, batch 32
              (inputs already decoded in memory);
- plain-best  the fastest plain forward pass found: channels-last, inference_mode, the batch size
              and thread count below (inputs in memory);
- folded      the plain-best forward pass of the network with its batch norms folded into the
              convolutions (layergain.features.extract.fold_batch_norms), batch 8;
- traced      channels-last forward of a TorchScript-traced, frozen model (inputs in memory);
- layergain   layergain.features.extract_features with its defaults (engine "folded", batch 8):
              reading and decoding the image files, all 18 probe layers captured with hooks and
              pooled, returned as numpy (no cache);
- layergain eager   the same with engine="eager" (hooks on the network as it is);
- layergain all readouts   extract_features with every CNN readout of the 18 layers from the same
              forward pass (avg, max, avgmax, gem, grid, cov: 6 feature sets), against layergain
              (avg alone). `--readouts-only` times just these two.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from layergain.data import load_image_set
from layergain.features import extract_features
from layergain.features.extract import fold_batch_norms
from layergain.features.images import load_rgb
from layergain.models import load_backbone

ALL_READOUTS = ["avg", "max", "avgmax", "gem", "grid", "cov"]


def _inputs(image_set, size, backbone) -> torch.Tensor:
    x = torch.stack([torch.from_numpy(load_rgb(p, size)).permute(2, 0, 1) for p in image_set.paths]).float()
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std).view(1, 3, 1, 1) * 255
    return (x - mean) / std


def _forward(model, x, batch, *, channels_last, mode):
    ctx = torch.inference_mode() if mode == "inference" else torch.no_grad()
    with ctx:
        for i in range(0, len(x), batch):
            xb = x[i : i + batch]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            model(xb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--readouts-only", action="store_true", help="time only avg alone vs all readouts")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    image_set = load_image_set(max_per_class=max(1, args.images // 8))
    backbone = load_backbone()
    if args.readouts_only:
        _readouts(backbone, image_set, args, default_threads)
        return
    x = _inputs(image_set, args.size, backbone)
    nchw = backbone.module.eval()
    cl = load_backbone().module.eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(load_backbone().module.eval().to(memory_format=torch.channels_last),
                                                  x[:2].contiguous(memory_format=torch.channels_last)))

    folded = fold_batch_norms(load_backbone().module.eval(), x[:2]).to(memory_format=torch.channels_last)
    methods = {
        "naive": lambda: _forward(nchw, x, 32, channels_last=False, mode="no_grad"),
        "plain-best (cl, b32)": lambda: _forward(cl, x, 32, channels_last=True, mode="inference"),
        "plain-best (cl, b16)": lambda: _forward(cl, x, 16, channels_last=True, mode="inference"),
        "plain-best (cl, b64)": lambda: _forward(cl, x, 64, channels_last=True, mode="inference"),
        "plain-best (cl, b8)": lambda: _forward(cl, x, 8, channels_last=True, mode="inference"),
        "plain-best (cl, b4)": lambda: _forward(cl, x, 4, channels_last=True, mode="inference"),
        "folded (cl, b8)": lambda: _forward(folded, x, 8, channels_last=True, mode="inference"),
        "traced (cl, b32)": lambda: _forward(traced, x, 32, channels_last=True, mode="inference"),
        "layergain": lambda: extract_features(backbone, image_set, image_size=args.size),
        "layergain eager": lambda: extract_features(backbone, image_set, image_size=args.size, engine="eager"),
        "layergain all readouts": lambda: extract_features(backbone, image_set, image_size=args.size, readouts=ALL_READOUTS),
    }
    for fn in methods.values():  # warm-up
        torch.set_num_threads(default_threads)
        fn()
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            torch.set_num_threads(default_threads)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = min((k for k in med if k.startswith("plain-best")), key=med.get)
    print(f"{len(x)} images at {args.size} px, EfficientNet-Lite0, torch {torch.__version__}, "
          f"{default_threads} threads, median of {args.repeats}")
    for name, t in med.items():
        print(f"  {name:<22} {t:7.2f} s  {len(x) / t:6.1f} img/s")
    print(f"naive / layergain         = {med['naive'] / med['layergain']:.2f}x  (target >= 1.4)")
    print(f"layergain / {plain} = {med['layergain'] / med[plain]:.2f}x  (target <= 1.15)")
    print(f"layergain / folded (cl, b8) = {med['layergain'] / med['folded (cl, b8)']:.2f}x")
    print(f"layergain / traced        = {med['layergain'] / med['traced (cl, b32)']:.2f}x")
    print(f"layergain eager / layergain = {med['layergain eager'] / med['layergain']:.2f}x")
    print(f"all {len(ALL_READOUTS)} readouts / avg alone = {med['layergain all readouts'] / med['layergain']:.2f}x")


def _readouts(backbone, image_set, args, threads: int) -> None:
    """avg alone against every CNN readout from the same pass, interleaved, medians of wall and CPU time.

    CPU time (this process, all threads) moves less than wall time when other processes share the
    cores; both are printed.
    """
    methods = {
        "avg alone": lambda: extract_features(backbone, image_set, image_size=args.size),
        "all readouts": lambda: extract_features(backbone, image_set, image_size=args.size, readouts=ALL_READOUTS),
    }
    widths = {r: sum(layer.width_for(r) for layer in backbone.layers) for r in ALL_READOUTS}
    wall: dict[str, list[float]] = {k: [] for k in methods}
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    for i in range(args.repeats + 1):  # the first round is a warm-up
        for name, fn in methods.items():
            torch.set_num_threads(threads)
            t, c = time.perf_counter(), time.process_time()
            run = fn()
            if i:
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    n = len(image_set)
    print(f"{n} images at {args.size} px, EfficientNet-Lite0, {len(backbone.layers)} layers, engine {run.engine}, "
          f"torch {torch.__version__}, {threads} threads, median of {args.repeats}")
    print("  total width per readout over the layers: " + ", ".join(f"{r} {w}" for r, w in widths.items()))
    for name in methods:
        print(f"  {name:<14} wall {med[name]:7.2f} s ({n / med[name]:6.1f} img/s)   cpu {med_cpu[name]:7.2f} s")
    print(f"all {len(ALL_READOUTS)} readouts / avg alone = {med['all readouts'] / med['avg alone']:.2f}x wall, "
          f"{med_cpu['all readouts'] / med_cpu['avg alone']:.2f}x cpu")


if __name__ == "__main__":
    main()
