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
from layergain.config import CompareConfig, RunConfig, StatsConfig, settings
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


def _int_at_least(minimum: int | None):
    """argparse type: a whole number >= ``minimum`` (the setting's minimum in :mod:`layergain.config`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


def _comma_list(text: str) -> list[str]:
    return text.split(",")


def _add(p: argparse.ArgumentParser, cls: type, *names: str) -> None:
    """Options for the settings ``names`` of a config class, from their :class:`~layergain.config.Setting`:
    flag, type, minimum, choices, default and help written once, in :mod:`layergain.config`."""
    table = settings(cls)
    for name in names:
        spec, default = table[name]
        flag = "--" + name.replace("_", "-")
        if spec.kind == "flag":
            p.add_argument(flag, action="store_true", help=spec.help)
            continue
        # a list's items are checked by the config's validate (argparse would compare the whole list)
        kw: dict = {"default": default, "metavar": spec.metavar, "choices": None if spec.kind == "list" else spec.choices}
        kw["type"] = {"int": _int_at_least(spec.minimum), "float": float, "list": _comma_list}.get(spec.kind, str)
        shown = f" (default {default})" if default is not None else ""
        p.add_argument(flag, help=spec.help + shown, **kw)


_DATA = ("data", "group_column", "max_per_class", "data_card", "skip_bad_images")
_GUARD = ("keep_duplicates_apart", "duplicate_threshold")
_MODEL = ("model", "model_kwargs", "weights", "layers")
_COMPUTE = ("batch_size", "device", "engine", "threads", "jobs", "workers", "scheduler")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="layergain", description="Per-layer knowledge gain of ImageNet-pretrained CNNs over random weights.")
    parser.add_argument("--version", action="version", version=f"layergain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="the whole study on one image set: features, probes, similarity, statistics, report")
    _add(run, RunConfig, *_DATA, *_GUARD, *_MODEL, "features", "out", "seeds", "folds", "repeats", "image_size", "readout", "baseline", "draws",
         "margin",
         "target", "confidence", "similarity_resamples", "probe_c", "seed", "cache", *_COMPUTE, "quiet")

    pln = sub.add_parser("plan", help="before a long study: count its forward passes, fits and resamples and "
                         "estimate its time here (a few seconds of calibration; nothing is written)")
    _add(pln, RunConfig, *_DATA, *_MODEL, "seeds", "folds", "repeats", "image_size", "readout", "baseline", "draws",
         "similarity_resamples", "jobs", "device", "quiet")

    ext = sub.add_parser("extract", help="compute and cache features only (pretrained and every seed)")
    _add(ext, RunConfig, *_DATA, *_MODEL, "seeds", "image_size", "readout", "baseline", "seed", "cache", "export",
         *_COMPUTE, "quiet")

    cmp_ = sub.add_parser("compare", help="compare the knowledge gain across image sets, or of configurations "
                          "(readouts, baselines, backbones) on the same images (two or more runs)")
    cmp_.add_argument("runs", nargs="+", metavar="RUN", help="run folder or its results.nc")
    cmp_.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add(cmp_, CompareConfig, "draws", "confidence", "alpha", "deep_from", "seed")
    _add(cmp_, RunConfig, "quiet")

    rep = sub.add_parser("report", help="rebuild a report from a results.nc (run), comparison.nc, "
                         "configurations.nc or backbones.nc alone")
    rep.add_argument("results", metavar="RESULTS", help="results.nc, comparison.nc, configurations.nc or "
                     "backbones.nc, or the folder holding it")
    rep.add_argument("--out", metavar="DIR", help="report folder (default: the results file's folder)")
    _add(rep, RunConfig, "quiet")

    st = sub.add_parser("stats", help="recompute a run's statistics (and report) from its results.nc alone")
    st.add_argument("results", metavar="RESULTS", help="results.nc of a run, or the folder holding it")
    st.add_argument("--out", metavar="DIR", help="output folder (default: the results file's folder)")
    _add(st, StatsConfig, "draws", "margin", "confidence", "target")
    _add(st, RunConfig, "quiet")

    layers = sub.add_parser("layers", help="list a model's probe layers (depth, layout, width per readout, parameters)")
    _add(layers, RunConfig, *_MODEL, "readout")
    layers.add_argument("--all", action="store_true", help="list every module name instead")
    return parser


def _log(quiet: bool):
    return (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))


def _config(args) -> RunConfig:
    """The RunConfig of ``run`` or ``extract``: every setting the sub-command has, the rest default."""
    given = {name: getattr(args, name) for name in settings(RunConfig) if hasattr(args, name)}
    return RunConfig(
        **given,
        progress=not args.quiet and sys.stderr.isatty(),
        command="layergain " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )


def _cmd_run(args) -> int:
    from layergain.pipeline import run

    output = run(_config(args), log=_log(args.quiet))
    if not args.quiet:
        for name, part in output.runs.items():
            print(f"report {name}: {part.out / 'report.html'}")
        print(f"report: {output.out / 'report.html'}  ({output.timings['total']:.0f} s)" if not output.runs
              else f"{len(output.runs)} configurations in {output.out}  ({output.timings['total']:.0f} s)")
    return 0


def _cmd_extract(args) -> int:
    from layergain.pipeline import extract

    counts = extract(_config(args), log=_log(args.quiet))
    if not args.quiet:
        print(f"cached features of {len(counts)} networks × {next(iter(counts.values()))} images")
    return 0


def _cmd_plan(args) -> int:
    from layergain.planning import plan

    print(plan(_config(args)).describe())
    return 0


def _cmd_compare(args) -> int:
    from layergain.pipeline import compare, compare_configurations
    from layergain.results.io import load_results
    from layergain.results.outcomes import same_images

    if len(args.runs) >= 2 and same_images([load_results(r) for r in args.runs]):
        # runs on the same images: configurations (readouts, baselines) compared layer by layer, or
        # backbones side by side; both paired over the images
        output = compare_configurations(args.runs, args.out, draws=args.draws, confidence=args.confidence,
                                        seed=args.seed, log=_log(args.quiet))
        if not args.quiet:
            kind = "backbones" if (output.out / "backbones.nc").is_file() else "configurations"
            print(f"{kind} report: {output.out / 'report.html'}")
        return 0

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
    from layergain.models.readouts import parse_readouts

    from layergain.config import json_object

    backbone = load_backbone(args.model, weights=None, seed=0, layers=args.layers,
                             model_kwargs=json_object(args.model_kwargs, "model_kwargs") or None)
    if args.all:
        for name, module in backbone.module.named_modules():
            if name:
                print(f"{name}\t{type(module).__name__}")
        return 0
    layers = backbone.layers
    readouts = [r.name for r in parse_readouts(args.readout or [backbone.default_readout], "readout")]
    for layer in layers:  # a readout that cannot read a layer: its error names the layer
        for r in readouts:
            layer.check_readout(r)
    rows = [["layer", "module", "depth", "rel. depth", "layout", *(f"width {r}" for r in readouts), "params to layer"]]
    rows += [[layer.name, layer.module, str(layer.depth), f"{layer.relative_depth:.3f}",
              layer.layout + (f"+{layer.prefix_tokens}" if layer.prefix_tokens else ""),
              *(str(layer.width_for(r)) for r in readouts), f"{layer.params_to_layer:,}"] for layer in layers]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) if k < 2 or k == 4 else cell.rjust(w)
                        for k, (cell, w) in enumerate(zip(row, widths))).rstrip())
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
                "stats": _cmd_stats, "layers": _cmd_layers, "plan": _cmd_plan}
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
