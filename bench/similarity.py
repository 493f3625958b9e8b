"""Similarity benchmark: layergain against the peer libraries, on the same inputs, in one run.

Run it in the peers' environment (bench/README.md, section "Similarity", says how to make it);
layergain is taken from ``src/`` of this checkout, nothing is installed into the package:

    bench/.venv-peers/bin/python bench/similarity.py            # full run (~15 min on 2 cores)
    bench/.venv-peers/bin/python bench/similarity.py --quick    # no N = 10 000, no repsim CCA
    bench/.venv-peers/bin/python bench/similarity.py --matrix-only   # 17 x 17 matrix only (~3 min)

Every peer is first checked against layergain on one input (the value difference is printed); a
peer that computes something else is reported as such and left out of the ratios. Ratios are
peer time / layergain time, measured in this run; "vs GEMM" is layergain time / the time of the
plain float32 products that the computation cannot avoid, timed in alternation with layergain
(best of 5 each) because the machine is shared and its load drifts. Peers are timed once (twice
when a run takes under 10 s, keeping the better). The 17 x 17 matrix case instead takes medians
of interleaved rounds of layergain (given the peers' CPU tensors), pytorch-cka and the GEMM in
numpy and in torch (the faster GEMM is the bound).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = str(ROOT / "bench" / "out" / "similarity.json")
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from layergain.similarity import (  # noqa: E402
    bootstrap_cka,
    cca,
    cka_matrix,
    debiased_cka,
    layer_similarity,
    linear_cka,
    svcca,
)

# EfficientNet-Lite0 probe layers: stem, 16 blocks, head. The 17 x 17 case uses blocks + head.
LITE0_WIDTHS = [32, 16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320, 1280]
MATRIX_WIDTHS = LITE0_WIDTHS[1:]
EPSILON_CKA_PYTORCH = 1e-4  # cka-pytorch's default epsilon in its final CKA


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (after one warm-up run when repeat > 1)."""
    out = fn()
    if repeat <= 1:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def once(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peer_time(fn: Callable[[], object]) -> tuple[float, object]:
    """A peer's time: one run, or the best of two when one run takes under 10 s."""
    t, out = once(fn)
    if t < 10:
        t = min(t, once(fn)[0])
    return t, out


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 5) -> dict[str, tuple[float, object]]:
    """Best time of each function over ``rounds`` alternating rounds (the machine is shared and
    its load drifts; alternating keeps the ratios between these functions fair)."""
    best: dict[str, tuple[float, object]] = {k: (np.inf, None) for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(rounds):
        for k, fn in fns.items():
            t, out = once(fn)
            if t < best[k][0]:
                best[k] = (t, out)
    return best


# --- peers: each adapter takes float32 numpy arrays and returns what the library computes ---------


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def peer_pytorch_cka_debiased(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch-cka ``cka.cka_from_features``: unbiased HSIC from N x N Grams (clamped to [0, 1])."""
    import cka

    return float(cka.cka_from_features(_t(x), _t(y))[0, 0])


def peer_ckatorch(unbiased: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    """ckatorch ``cka_base``: N x N Grams in float64, Kornblith's (un)biased centring."""

    def run(x: np.ndarray, y: np.ndarray) -> float:
        import ckatorch

        return float(ckatorch.cka_base(_t(x), _t(y), kernel="linear", unbiased=unbiased))

    return run


def _cka_pytorch_pair(gx: torch.Tensor, gy: torch.Tensor) -> float:
    from cka_pytorch.hsic import hsic1

    xy, xx, yy = hsic1(gx, gy), hsic1(gx, gx), hsic1(gy, gy)
    return float(xy / torch.sqrt(xx * yy + EPSILON_CKA_PYTORCH))


def peer_cka_pytorch_debiased(x: np.ndarray, y: np.ndarray) -> float:
    """cka-pytorch: ``hsic1`` on Gram batches (bmm of N x N), final CKA as in CKACalculator."""
    tx, ty = _t(x), _t(y)
    return _cka_pytorch_pair((tx @ tx.T)[None], (ty @ ty.T)[None])


def peer_torch_cka_debiased(x: np.ndarray, y: np.ndarray) -> float:
    """torch-cka ``CKA._HSIC`` on zero-diagonal Grams (one batch), as in ``CKA.compare``."""
    from torch_cka.cka import CKA

    me = SimpleNamespace(device="cpu")
    tx, ty = _t(x), _t(y)
    k, ell = tx @ tx.T, ty @ ty.T
    k.fill_diagonal_(0.0)
    ell.fill_diagonal_(0.0)
    xy, xx, yy = CKA._HSIC(me, k, ell), CKA._HSIC(me, k, k), CKA._HSIC(me, ell, ell)
    return xy / (np.sqrt(xx) * np.sqrt(yy))


def peer_repsim(estimator: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """repsim ``cka``: C++ (Eigen), float64; 'gretton' = biased HSIC, 'song' = unbiased."""

    def run(x: np.ndarray, y: np.ndarray) -> float:
        import repsim

        return float(repsim.cka([x, y], kernel_type="linear", estimator=estimator)[0, 1])

    return run


LINEAR_PEERS = {"ckatorch": peer_ckatorch(False), "repsim": peer_repsim("gretton")}
DEBIASED_PEERS = {
    "pytorch-cka": peer_pytorch_cka_debiased,
    "cka-pytorch": peer_cka_pytorch_debiased,
    "torch-cka": peer_torch_cka_debiased,
    "ckatorch": peer_ckatorch(True),
    "repsim": peer_repsim("song"),
}
# Peers whose cost grows as N^3 (products of N x N matrices), or that are slower still: measured at
# N = 2000 only (their N = 10 000 time would be 1-2 orders of magnitude above the fastest peer).
CUBIC = {"cka-pytorch", "torch-cka", "repsim"}


def pair_inputs(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    # Non-negative with a positive mean, like pooled ReLU features; float32 like extracted features.
    x = (np.abs(rng.standard_normal((n, d), dtype=np.float32)) + 1.0).astype(np.float32)
    w = rng.standard_normal((d, d), dtype=np.float32) / np.float32(np.sqrt(d))
    y = np.maximum((x - 1.8) @ w + rng.standard_normal((n, d), dtype=np.float32), 0.0)
    return x, y.astype(np.float32)


def gemm_pair(x: np.ndarray, y: np.ndarray) -> Callable[[], object]:
    """The products a pair cannot avoid: X^T Y, X^T X, Y^T Y (numpy uses syrk for the last two)."""
    return lambda: (x.T @ y, x.T @ x, y.T @ y)


# A peer "computes the same quantity" when it agrees with layergain to this on the check input;
# float32 peers that form uncentred Gram matrices lose about 4 digits there (features with a
# positive mean), float64 peers agree to ~1e-10.
AGREE = 1e-3


def check_agreement(rows: list[dict], rng: np.random.Generator) -> set[tuple[str, str]]:
    """Every peer against layergain on one small input, before any timing; returns who agrees."""
    x, y = pair_inputs(rng, 300, 64)
    ours = {"linear": linear_cka(x, y), "debiased": debiased_cka(x, y)}
    agree = set()
    for kind, peers in (("linear", LINEAR_PEERS), ("debiased", DEBIASED_PEERS)):
        for name, fn in peers.items():
            value = fn(x, y)
            diff = abs(value - ours[kind])
            if diff < AGREE:
                agree.add((kind, name))
            rows.append({"case": "agreement N=300 D=64", "kind": kind, "peer": name, "peer_value": value,
                         "layergain_value": ours[kind], "abs_diff": diff})
            verdict = "same quantity" if diff < AGREE else "DIFFERENT quantity: left out of the ratios"
            print(f"  agreement {kind:8s} {name:12s} peer={value:.7f} layergain={ours[kind]:.7f} "
                  f"|diff|={diff:.1e}  {verdict}")
    return agree


def bench_pairs(sizes: list[tuple[int, int]], rows: list[dict], rng: np.random.Generator,
                agree: set[tuple[str, str]]) -> None:
    for n, d in sizes:
        x, y = pair_inputs(rng, n, d)
        for kind, fn, peers in (("linear", linear_cka, LINEAR_PEERS), ("debiased", debiased_cka, DEBIASED_PEERS)):
            timed = interleaved({"ours": lambda fn=fn: fn(x, y), "gemm": gemm_pair(x, y)})
            (t_ours, v_ours), (t_gemm, _) = timed["ours"], timed["gemm"]
            peer_times = {}
            for name, peer in peers.items():
                if (n > 2000 and name in CUBIC) or (kind, name) not in agree:
                    continue
                t_peer, v_peer = peer_time(lambda peer=peer: peer(x, y))
                peer_times[name] = t_peer
                rows.append({"case": f"pair N={n} D={d}", "kind": kind, "peer": name, "peer_s": t_peer,
                             "abs_diff": abs(v_peer - v_ours)})
            fastest = min(peer_times, key=peer_times.get)
            row = {"case": f"pair N={n} D={d}", "kind": kind, "layergain_s": t_ours, "gemm_s": t_gemm,
                   "fastest_peer": fastest, "fastest_peer_s": peer_times[fastest],
                   "speedup": peer_times[fastest] / t_ours, "vs_gemm": t_ours / t_gemm}
            rows.append(row)
            others = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(peer_times.items(), key=lambda kv: kv[1]))
            print(f"  pair N={n:5d} D={d:4d} {kind:8s} layergain {t_ours:.3f}s | GEMMs {t_gemm:.3f}s "
                  f"(x{t_ours / t_gemm:.2f}) | {others} | speedup vs {fastest}: x{row['speedup']:.1f}")


def _matrix_inputs(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    base = rng.standard_normal((n, 32), dtype=np.float32)
    def net() -> dict[str, np.ndarray]:
        return {f"layer{i}": np.maximum(base @ rng.standard_normal((32, w), dtype=np.float32)
                                        + rng.standard_normal((n, w), dtype=np.float32), 0).astype(np.float32)
                for i, w in enumerate(MATRIX_WIDTHS)}
    return net(), net()


def _cka_pytorch_matrix(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> np.ndarray:
    """cka-pytorch CKACalculator._update_hsic_matrices + _compute_final_cka, on given features."""
    from cka_pytorch.hsic import hsic1

    gx = [a @ a.T for a in xs]
    gy = [b @ b.T for b in ys]
    hx = torch.cat([hsic1(torch.stack(gx[i:i + 64]), torch.stack(gx[i:i + 64])) for i in range(0, len(gx), 64)])
    hy = torch.cat([hsic1(torch.stack(gy[i:i + 64]), torch.stack(gy[i:i + 64])) for i in range(0, len(gy), 64)])
    pairs = [(i, j) for j in range(len(gy)) for i in range(len(gx))]
    cross = torch.cat([
        hsic1(torch.stack([gx[i] for i, _ in pairs[s:s + 64]]), torch.stack([gy[j] for _, j in pairs[s:s + 64]]))
        for s in range(0, len(pairs), 64)
    ])
    m = cross.reshape(len(gy), len(gx)).T
    return (m / torch.sqrt(torch.outer(hx, hy) + EPSILON_CKA_PYTORCH)).numpy()


# Pause between timed calls, so that threads a call leaves spinning (torch's OpenMP, OpenBLAS)
# do not run into the next call's time.
SETTLE_S = 0.5


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, list[float], object]]:
    """Median wall time of each function over ``rounds`` rounds that run every function once, in
    turn (after one warm-up each, with a pause before each call): load drifts on this shared
    machine hit all of them alike. The order rotates from round to round: identical code was
    measured up to 30 % slower when it always ran right after a two-thread GEMM."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    out = {k: fn() for k, fn in fns.items()}
    names = list(fns)
    for r in range(rounds):
        for k in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(SETTLE_S)
            t, out[k] = once(fns[k])
            times[k].append(t)
    return {k: (float(np.median(v)), v, out[k]) for k, v in times.items()}


def bench_matrix(n: int, rows: list[dict], rng: np.random.Generator, *, rounds: int = 7, slow_peers: bool = True) -> None:
    """17 x 17 cross-layer matrix. layergain gets the same CPU tensors as the peers; it is timed in
    interleaved rounds with pytorch-cka (the fastest peer) and with one GEMM of the concatenated
    features in numpy (OpenBLAS) and in torch (MKL), the faster of which is the bound."""
    import cka
    import ckatorch

    xs, ys = _matrix_inputs(rng, n)
    tx = {k: _t(a) for k, a in xs.items()}
    ty = {k: _t(b) for k, b in ys.items()}
    lx, ly = list(tx.values()), list(ty.values())
    zx, zy = np.concatenate(list(xs.values()), axis=1), np.concatenate(list(ys.values()), axis=1)
    tzx, tzy = _t(zx), _t(zy)
    sum_d = zx.shape[1]
    print(f"  N = {n}, {len(xs)} x {len(ys)} layers, sum of widths {sum_d} per side; multiply-adds: one GEMM "
          f"N*SD^2 = {n * sum_d**2:.2e}; feature form + self terms {n * (sum_d**2 + sum(w * w for w in MATRIX_WIDTHS)):.2e}; "
          f"Gram form (syrk) N^2*2*SD/2 = {n * n * sum_d:.2e} + pair sums N^2/2*(17*17+34) = {n * n / 2 * (17 * 17 + 34):.2e}")
    load = os.getloadavg()
    fns: dict[str, Callable[[], object]] = {
        "linear": lambda: cka_matrix(tx, ty, kind="linear").values,
        "debiased": lambda: cka_matrix(tx, ty, kind="debiased").values,
        "pytorch-cka": lambda: cka.cka_from_features(lx, ly).numpy(),
        "gemm numpy": lambda: zx.T @ zy,
        "gemm torch": lambda: tzx.T @ tzy,
    }
    timed = interleaved_medians(fns, rounds)
    load = (load, os.getloadavg())
    t = {k: v[0] for k, v in timed.items()}
    gemm_name = min(("gemm numpy", "gemm torch"), key=t.get)
    t_gemm = t[gemm_name]
    diff = float(np.max(np.abs(timed["pytorch-cka"][2] - timed["debiased"][2])))
    print(f"  load average {load[0][0]:.1f} before, {load[1][0]:.1f} after; medians of {rounds} interleaved rounds:")
    for k, (med, all_t, _) in timed.items():
        print(f"    {k:12s} median {med:.3f}s  (min {min(all_t):.3f}, max {max(all_t):.3f})")
    print(f"    pytorch-cka vs layergain debiased: max|diff| {diff:.1e}")
    peers = {"debiased": {"pytorch-cka": t["pytorch-cka"]}, "linear": {}}
    if slow_peers:
        slow = {
            ("debiased", "cka-pytorch"): lambda: _cka_pytorch_matrix(lx, ly),
            ("debiased", "ckatorch"): lambda: np.array([[float(ckatorch.cka_base(a, b, unbiased=True)) for b in ly] for a in lx]),
            ("linear", "ckatorch"): lambda: np.array([[float(ckatorch.cka_base(a, b)) for b in ly] for a in lx]),
        }
        for (kind, name), fn in slow.items():
            t_peer, m_peer = peer_time(fn)
            peers[kind][name] = t_peer
            d = float(np.max(np.abs(m_peer - timed[kind][2])))
            rows.append({"case": f"matrix 17x17 N={n}", "kind": kind, "peer": name, "peer_s": t_peer, "max_abs_diff": d})
            print(f"    {name:12s} {kind:8s} {t_peer:.2f}s (once)  max|diff|={d:.1e}")
    for kind in ("linear", "debiased"):
        row = {"case": f"matrix 17x17 N={n}", "kind": kind, "layergain_s": t[kind], "gemm_s": t_gemm,
               "gemm": gemm_name, "gemm_numpy_s": t["gemm numpy"], "gemm_torch_s": t["gemm torch"],
               "vs_gemm": t[kind] / t_gemm, "rounds": rounds, "load": load,
               "times": {k: v[1] for k, v in timed.items()}}
        if peers[kind]:
            fastest = min(peers[kind], key=peers[kind].get)
            row.update({"fastest_peer": fastest, "fastest_peer_s": peers[kind][fastest],
                        "speedup": peers[kind][fastest] / t[kind]})
        rows.append(row)
        versus = f" | speedup vs {row['fastest_peer']}: x{row['speedup']:.1f}" if peers[kind] else ""
        print(f"  matrix 17x17 N={n} {kind:8s} layergain {t[kind]:.3f}s | one GEMM of the concatenated features "
              f"({gemm_name}) {t_gemm:.3f}s (x{t[kind] / t_gemm:.2f}){versus}")


def bench_bootstrap(n: int, d: int, n_boot: int, peer_calls: int, rows: list[dict], rng: np.random.Generator) -> None:
    """B draws of debiased CKA; the peer is timed on ``peer_calls`` draws and scaled to B."""
    x, y = pair_inputs(rng, n, d)
    peer = peer_pytorch_cka_debiased
    # Equal quantity first: subsampling without replacement, same subsets, same values.
    sub = bootstrap_cka(x, y, n_boot=peer_calls, seed=1, method="subsample")
    from layergain.similarity.bootstrap import _draw_weights

    subsets = [np.flatnonzero(w) for w in _draw_weights(np.random.default_rng(1), n, peer_calls, "subsample", n // 2)]
    t_peer_sub, peer_sub = once(lambda: [peer(x[i], y[i]) for i in subsets])
    diff = float(np.max(np.abs(np.array(peer_sub) - sub.values)))
    f64 = peer_ckatorch(True)
    diff64 = max(abs(f64(x[i], y[i]) - v) for i, v in zip(subsets[:3], sub.values[:3]))
    print(f"    subsample draws vs pytorch-cka (float32): max|diff| {diff:.1e}; vs ckatorch (float64), "
          f"3 draws: max|diff| {diff64:.1e}")
    idx = np.random.default_rng(2).integers(0, n, size=(peer_calls, n))
    t_peer_dup, _ = once(lambda: [peer(x[i], y[i]) for i in idx])
    for method, t_peer in (("subsample", t_peer_sub), ("exclude-duplicates", t_peer_dup)):
        t_ours, _ = best_time(lambda method=method: bootstrap_cka(x, y, n_boot=n_boot, seed=0, method=method), 2)
        scaled = t_peer * n_boot / peer_calls
        row = {"case": f"bootstrap B={n_boot} N={n} D={d}", "kind": "debiased", "method": method,
               "layergain_s": t_ours, "fastest_peer": "pytorch-cka", "fastest_peer_s": scaled,
               "peer_calls_timed": peer_calls, "speedup": scaled / t_ours}
        if method == "subsample":
            row["max_abs_diff"] = diff
        rows.append(row)
        what = ("same subsets, max|diff| " + f"{diff:.1e}") if method == "subsample" else (
            "peer recomputes on each with-replacement resample (duplicates inflate it)")
        print(f"  bootstrap B={n_boot} N={n} D={d} {method:18s} layergain {t_ours:.2f}s | pytorch-cka "
              f"{peer_calls} calls {t_peer:.2f}s -> x{n_boot // peer_calls} = {scaled:.1f}s ({what}) | "
              f"speedup x{row['speedup']:.1f}")


def bench_cca(n: int, d: int, with_repsim: bool, rows: list[dict], rng: np.random.Generator) -> None:
    x64 = rng.standard_normal((n, d)) @ np.diag(np.linspace(2, 0.05, d))
    y64 = x64 @ rng.standard_normal((d, d)) * 0.1 + rng.standard_normal((n, d))
    t_sv, v_sv = best_time(lambda: svcca(x64, y64, keep=0.99), 3)
    t_cca, v_cca = best_time(lambda: cca(x64, y64), 3)
    print(f"  svcca N={n} D={d}: layergain svcca(keep=0.99) {t_sv:.3f}s = {v_sv:.6f}; cca {t_cca:.3f}s = {v_cca:.6f}")
    row = {"case": f"svcca N={n} D={d}", "layergain_svcca_s": t_sv, "layergain_cca_s": t_cca}
    if with_repsim:
        import repsim

        t_rc, r_cca = once(lambda: repsim.cca([x64, y64], summary_type="pillai")[0, 1])
        t_rs, r_sv = once(lambda: repsim.svcca([x64, y64], summary_type="pillai")[0, 1])
        row.update({"repsim_cca_s": t_rc, "repsim_cca_diff": abs(r_cca - v_cca), "repsim_svcca_s": t_rs,
                    "repsim_svcca_value": r_sv, "speedup_cca": t_rc / t_cca, "speedup_svcca_named": t_rs / t_sv})
        print(f"    repsim cca (mean canonical correlation, 'pillai') {t_rc:.1f}s |diff| {abs(r_cca - v_cca):.1e} "
              f"-> speedup x{t_rc / t_cca:.0f} (equal quantity)")
        print(f"    repsim svcca ('pillai') {t_rs:.1f}s = {r_sv:.6f}: its truncation differs from keep=0.99 of the "
              f"variance (layergain {v_sv:.6f}); same-named speedup x{t_rs / t_sv:.0f}")
    rows.append(row)


def bench_study(n: int, rows: list[dict], rng: np.random.Generator) -> None:
    feats = {
        init: {f"layer{i}": np.maximum(rng.standard_normal((n, w), dtype=np.float32), 0) for i, w in enumerate(LITE0_WIDTHS)}
        for init in ["pretrained"] + [f"random-{s}" for s in range(5)]
    }
    t, _ = once(lambda: layer_similarity(feats))
    rows.append({"case": f"layer_similarity 6 inits x 18 layers N={n}", "layergain_s": t})
    print(f"  layer_similarity, 6 inits x 18 Lite0 layers, every measure, N={n}: {t:.1f}s")


def calibrate(rng: np.random.Generator) -> None:
    """Both forms of the HSIC tables timed on shapes around their crossover, against the cost
    model that chooses between them (layergain.similarity._hsic.form_costs)."""
    from layergain.similarity import _hsic
    from layergain.similarity._backend import NumpyOps

    ops = NumpyOps()
    cases = [(f"17 x 17 Lite0 N={n}", n, MATRIX_WIDTHS, MATRIX_WIDTHS) for n in (500, 1000, 2000, 4000)]
    cases += [(f"pair N={n} D={d}", n, [d], [d]) for n, d in ((1000, 512), (2000, 1024), (4000, 2048), (2000, 512))]
    cases += [(f"6 inits, one layer N={n} D={d}", n, [d] * 6, None) for n, d in ((2000, 320), (2000, 1280))]
    for name, n, wx, wy in cases:
        xs = [ops.centre(rng.standard_normal((n, w), dtype=np.float32)) for w in wx]
        ys = None if wy is None else [ops.centre(rng.standard_normal((n, w), dtype=np.float32)) for w in wy]
        timed = interleaved_medians({form: lambda form=form: _hsic.hsic_tables(ops, xs, ys, form=form)
                                     for form in ("feature", "gram")}, 3)
        feature, gram = _hsic.form_costs(n, wx, wy)
        measured = timed["gram"][0] / timed["feature"][0]
        chosen = "gram" if gram < feature else "feature"
        print(f"  {name:30s} feature {timed['feature'][0]:.3f}s gram {timed['gram'][0]:.3f}s: gram/feature "
              f"measured {measured:.2f}, modelled {gram / feature:.2f} -> {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip N = 10 000 and repsim's CCA (minutes each)")
    parser.add_argument("--matrix-only", action="store_true",
                        help="only the 17 x 17 matrix against pytorch-cka and the GEMM (a few minutes)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the matrix case")
    parser.add_argument("--calibrate", action="store_true", help="only time the two forms against the cost model")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    print(f"threads: torch {torch.get_num_threads()}, python {platform.python_version()}, torch {torch.__version__}")
    if args.calibrate:
        calibrate(rng)
        return
    if args.matrix_only:
        print("cross-layer matrix, EfficientNet-Lite0 widths (16 blocks + head):")
        bench_matrix(2000, rows, rng, rounds=args.rounds, slow_peers=False)
        out = Path(args.out).with_name("similarity_matrix.json") if args.out == DEFAULT_OUT else Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1))
        print(f"wrote {out}")
        return
    print("agreement (peer vs layergain, N=300, D=64):")
    agree = check_agreement(rows, rng)
    sizes = [(2000, 512), (2000, 2048)] + ([] if args.quick else [(10000, 512), (10000, 2048)])
    print("one pair of layers:")
    bench_pairs(sizes, rows, rng, agree)
    print("cross-layer matrix, EfficientNet-Lite0 widths (16 blocks + head):")
    bench_matrix(2000, rows, rng, rounds=args.rounds)
    print("bootstrap:")
    bench_bootstrap(2000, 512, 1000, 20, rows, rng)
    print("CCA family:")
    bench_cca(2000, 512, not args.quick, rows, rng)
    print("whole run:")
    for n in (160, 2000):
        bench_study(n, rows, rng)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
