"""GPU check (issue 17): the CUDA path of extraction, probes and similarity against the CPU, one call.

For a session lent an accelerator, from the repository root::

    .venv/bin/python bench/gpu_check.py                      # cuda vs cpu, the bundled sample (160 images)
    .venv/bin/python bench/gpu_check.py --device cpu --dry   # no GPU: every code path on the CPU, 16 images

Steps, each against the CPU result of the same images (pretrained EfficientNet-Lite0 and random-0,
all 18 probe layers, engine "folded", TF32 off so that float32 is float32 on both):

1. extraction: ``extract_features(..., device=DEVICE)``; per layer the largest absolute difference
   relative to the layer's largest absolute feature. Tolerance ``FEATURE_RTOL`` (1e-3: cuDNN and
   oneDNN sum convolutions in different orders; 18 layers deep in float32 that is ~1e-5-1e-4).
2. probes: there is no torch path (numpy/scikit-learn on the CPU), so the check is that the
   device's features give the same probe: ``cross_val_probe`` (Newton solver) on both feature
   sets, predictions identical >= ``PREDICTION_AGREEMENT`` (0.99), accuracies within 0.002.
3. similarity: ``cka_matrix`` (linear and debiased, 18 x 18) and ``layer_similarity``
   (linear and debiased CKA) on torch tensors on the device against numpy on the CPU, the same
   features; absolute tolerance ``CKA_ATOL`` (1e-4; float32 products, float64 sums).

Throughput: images/s of the extraction on each device (decoding included), seconds of the
CKA matrix on each. Writes ``gpu_check.json`` to ``$OUT`` when set (else prints only); exit code
1 when a check fails. Budget: under 8 minutes on one GPU (the bundled sample takes about a minute
on a quiet machine; ``--images`` caps the count).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

FEATURE_RTOL = 1e-3
PREDICTION_AGREEMENT = 0.99
ACCURACY_ATOL = 0.002
CKA_ATOL = 1e-4


def _extract(backbone, image_set, device, image_size):
    from layergain.features import extract_features

    t = time.perf_counter()
    feats = extract_features(backbone, image_set, device=device, image_size=image_size).features
    return {k: np.asarray(v, dtype=np.float64) for k, v in feats.items()}, time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="accelerator to check against the CPU (default cuda)")
    parser.add_argument("--dry", action="store_true", help="16 images at 64 px: exercise the code paths quickly")
    parser.add_argument("--images", type=int, default=None, help="at most this many images per class")
    args = parser.parse_args()

    import torch

    from layergain.data import load_image_set
    from layergain.models import load_backbone
    from layergain.probes import ProbeSettings, cross_val_probe, make_folds
    from layergain.similarity import cka_matrix, layer_similarity

    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("no CUDA device: run with --device cpu --dry to exercise the code paths", file=sys.stderr)
            return 2
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    per_class = 2 if args.dry else args.images
    size = 64 if args.dry else 224
    image_set = load_image_set(max_per_class=per_class, seed=0)
    report = {"device": args.device, "dry": args.dry, "n_images": len(image_set), "image_size": size,
              "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else "",
              "checks": {}, "throughput": {}}
    ok = True

    features = {}
    for weights, seed in (("pretrained", None), (None, 0)):
        backbone = load_backbone(weights=weights, seed=seed)
        cpu, t_cpu = _extract(backbone, image_set, "cpu", size)
        dev, t_dev = _extract(backbone, image_set, args.device, size)
        worst = {layer: float(np.abs(cpu[layer] - dev[layer]).max() / max(np.abs(cpu[layer]).max(), 1e-30))
                 for layer in cpu}
        passed = max(worst.values()) <= FEATURE_RTOL
        ok &= passed
        report["checks"][f"extraction {backbone.init}"] = {"max_relative_difference": max(worst.values()),
                                                           "worst_layer": max(worst, key=worst.get),
                                                           "tolerance": FEATURE_RTOL, "passed": passed}
        report["throughput"][f"extraction {backbone.init} images/s"] = {
            "cpu": len(image_set) / t_cpu, args.device: len(image_set) / t_dev}
        features[backbone.init] = (cpu, dev)

    labels = image_set.labels
    folds = make_folds(labels, image_set.groups, folds=2 if args.dry else 5, seed=0)
    newton = ProbeSettings(solver="newton")
    agree, dacc = [], []
    for cpu, dev in features.values():
        for layer in cpu:
            a = cross_val_probe(cpu[layer], labels, folds, settings=newton).prediction
            b = cross_val_probe(dev[layer], labels, folds, settings=newton).prediction
            agree.append(float((a == b).mean()))
            dacc.append(float(abs((a == labels).mean() - (b == labels).mean())))
    passed = min(agree) >= PREDICTION_AGREEMENT and max(dacc) <= ACCURACY_ATOL
    ok &= passed
    report["checks"]["probes on device features"] = {"min_identical": min(agree), "max_accuracy_difference":
                                                     max(dacc), "tolerance": [PREDICTION_AGREEMENT, ACCURACY_ATOL],
                                                     "passed": passed}

    pre, rnd = features["pretrained"][0], features["random-0"][0]
    on_device = {name: {k: torch.as_tensor(v, dtype=torch.float32, device=args.device) for k, v in f.items()}
                 for name, f in (("pretrained", pre), ("random-0", rnd))}
    worst = 0.0
    for kind in ("linear", "debiased"):
        t = time.perf_counter()
        ref = cka_matrix(pre, rnd, kind=kind).values
        t_cpu = time.perf_counter() - t
        t = time.perf_counter()
        got = cka_matrix(on_device["pretrained"], on_device["random-0"], kind=kind).values
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t_dev = time.perf_counter() - t
        worst = max(worst, float(np.nanmax(np.abs(ref - got))))
        report["throughput"][f"cka_matrix {kind} 18x18 s"] = {"cpu": t_cpu, args.device: t_dev}
    measures = ("cka_linear", "cka_debiased")
    ref = layer_similarity({"pretrained": pre, "random-0": rnd}, measures=measures)
    got = layer_similarity(on_device, measures=measures)
    for m in measures:
        worst = max(worst, float(np.nanmax(np.abs(ref[m].values - got[m].values))))
    passed = worst <= CKA_ATOL
    ok &= passed
    report["checks"]["similarity on device"] = {"max_absolute_difference": worst, "tolerance": CKA_ATOL,
                                                "passed": passed}
    report["passed"] = bool(ok)
    text = json.dumps(report, indent=2)
    print(text)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gpu_check.json"), "w") as fh:
            fh.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
