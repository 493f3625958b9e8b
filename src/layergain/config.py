"""Settings of a run, a comparison and a recomputation of statistics: every default, choice and
minimum once (ground floor).

Each setting is a dataclass field whose metadata holds a :class:`Setting` (help, choices,
minimum, interval); :meth:`validate` checks them and :mod:`layergain.cli` builds its options from
them, so a default or a limit is written here and nowhere else. The run's random streams are
derived here too (:func:`streams`). Nothing here imports torch, numpy or another stage at import time: the choices that
stages define (:data:`ENGINES`, :data:`READOUTS`, :data:`BASELINES`, :data:`DEFAULT_MODEL`) are
spelled here and a test checks they agree with the stages.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layergain.errors import InputTypeError, InputValueError

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_OUT",
    "BASELINES",
    "BASELINE_METHODS",
    "ENGINES",
    "READOUTS",
    "STREAMS",
    "TARGETS",
    "CompareConfig",
    "RunConfig",
    "Setting",
    "StatsConfig",
    "setting",
    "settings",
    "streams",
]

#: The backbone of a run without ``model`` (``layergain.models.DEFAULT_MODEL``).
DEFAULT_MODEL = "efficientnet_lite0"
#: Feature extraction engines (``layergain.features.extract.ENGINES``), the default first.
ENGINES: tuple[str, ...] = ("folded", "traced", "eager")
#: Readouts of a probe layer (``layergain.models.readouts.READOUTS``): feature maps first, avg the
#: CNNs' default; ``gem``, ``grid`` and ``cov`` take a parameter as ``gem:P``, ``grid:K``, ``cov:M``.
READOUTS: tuple[str, ...] = ("avg", "max", "avgmax", "gem", "grid", "cov", "cls", "mean", "cls+mean")
#: Random baselines (``layergain.models.baselines.BASELINES``), the default first.
BASELINES: tuple[str, ...] = ("default", "bn-recalibrated", "permuted", "matched")
#: What the random networks of each baseline are, for the results' attrs and the Methods (the
#: construction: ``layergain.models.baselines``).
BASELINE_METHODS: dict[str, str] = {
    "default": "architecture's default initialisation under torch.manual_seed(seed)",
    "bn-recalibrated": (
        "architecture's default initialisation under torch.manual_seed(seed), every batch norm's running mean "
        "and (population) variance then re-estimated, without labels, on at most 128 images of the set (a fixed "
        "seeded subset) in one eval-mode pass, each batch norm from its own input"
    ),
    "permuted": (
        "each pretrained parameter tensor with its values shuffled under the seed (the same values per tensor, "
        "no learned arrangement); batch-norm running statistics reset to their initial values"
    ),
    "matched": (
        "each pretrained parameter tensor replaced by i.i.d. normal draws with that tensor's mean and variance "
        "(Mean Var Init, Raghu et al. 2019); batch-norm running statistics reset to their initial values"
    ),
}
#: The gain's population: pretraining vs the random-init distribution (the pretrained network one
#: draw of it), or this pretrained network (``pretrained`` of :func:`layergain.stats.gain_statistics`).
TARGETS: tuple[str, ...] = ("draw", "fixed")
#: Where a run writes without ``out``: ``layergain-out/<set name>`` (git ignores it; the committed
#: ``reports/`` are written with an explicit ``out``).
DEFAULT_OUT = "layergain-out"
#: Names of a run's independent random streams, in the order they are spawned (fixed forever:
#: another order or name changes every result).
STREAMS: tuple[str, ...] = ("folds", "statistics", "transferability", "similarity_inference", "leakage")


def streams(seed: int) -> dict[str, Any]:
    """Independent random streams of a run, one :class:`numpy.random.SeedSequence` per name of
    :data:`STREAMS`, spawned from ``seed``."""
    import numpy as np

    return dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))


@dataclass(frozen=True)
class Setting:
    """What the CLI and :meth:`validate` know of one setting.

    ``kind`` is ``"int"``, ``"float"``, ``"str"``, ``"flag"`` (on/off) or ``"list"``
    (comma-separated on the command line). Integers must be ``>= minimum``; floats must lie in
    ``between`` (open unless ``closed``) or be ``> above``; ``note`` is added to a range message.
    """

    help: str = ""
    kind: str = "str"
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    between: tuple[float, float] | None = None
    closed: bool = False
    above: float | None = None
    note: str = ""

    def check(self, value: Any, name: str) -> None:
        """Raise a :class:`~layergain.errors.LayergainError` naming ``name`` unless ``value`` is allowed
        (None always is: the setting is not given)."""
        from layergain.validation import check_choice, check_int  # numpy: not at CLI start-up

        if value is None:
            return
        if self.kind == "list":
            _check_list(value, name, self.choices)
            return
        if self.kind == "json":
            json_object(value, name)
            return
        if self.choices is not None:
            check_choice(value, name, self.choices)
        if self.kind == "int":
            check_int(value, name, minimum=self.minimum)
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InputTypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}.")
            if self.between is not None:
                lo, hi = self.between
                inside = lo <= value <= hi if self.closed else lo < value < hi
                if not inside:
                    interval = f"[{lo:g}, {hi:g}]" if self.closed else f"({lo:g}, {hi:g})"
                    raise InputValueError(f"`{name}` must lie in {interval}{self.note}, got {value}.")
            if self.above is not None and not value > self.above:
                raise InputValueError(f"`{name}` must be > {self.above:g}{self.note}, got {value}.")


def json_object(value: str | dict | None, name: str) -> dict:
    """The dict a JSON-object setting spells (``'{"img_size": 64}'``; a dict as it is; None: {})."""
    import json

    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except json.JSONDecodeError as exc:
        raise InputValueError(f"`{name}` must be a JSON object such as '{{\"img_size\": 64}}', got {value!r} ({exc.msg}).") from None
    if not isinstance(parsed, dict):
        raise InputValueError(f"`{name}` must be a JSON object such as '{{\"img_size\": 64}}', got {value!r}.")
    return parsed


def _check_list(value: Any, name: str, choices: tuple[str, ...] | None) -> None:
    """A list setting: a non-empty list of distinct strings, each one of ``choices`` (if any) up to a
    parameter after ``:`` (``grid:3``; the stage that reads it checks the parameter)."""
    from layergain.validation import check_choice

    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InputTypeError(f"`{name}` must be a list of names, got {type(value).__name__} {value!r}.")
    if not value or not all(isinstance(v, str) and v for v in value):
        raise InputValueError(f"`{name}` must be a non-empty list of non-empty names, got {list(value)!r}.")
    repeated = sorted({v for v in value if list(value).count(v) > 1})
    if repeated:
        raise InputValueError(f"`{name}` names {', '.join(map(repr, repeated))} more than once; give each once.")
    for v in value if choices is not None else ():
        check_choice(v.partition(":")[0], name, choices)


def setting(default: Any = None, help: str = "", **kw: Any) -> Any:
    """A dataclass field with ``default`` and its :class:`Setting` in ``metadata["setting"]``."""
    if isinstance(default, list):
        raise TypeError("use a tuple or None for a list setting's default")
    return field(default=default, metadata={"setting": Setting(help=help, **kw)})


def settings(cls: type) -> dict[str, tuple[Setting, Any]]:
    """``{field name: (its Setting, its default)}`` of a config class, in field order."""
    return {f.name: (f.metadata["setting"], f.default) for f in dataclasses.fields(cls) if "setting" in f.metadata}


def _validate(config: Any) -> None:
    for name, (spec, _) in settings(type(config)).items():
        spec.check(getattr(config, name), name)


def _like(cls: type, name: str, **changes: Any) -> Any:
    """A field with the :class:`Setting` of ``cls.name`` (its choices and limits), changed by ``changes``;
    default None unless ``default`` is among them."""
    spec, _ = settings(cls)[name]
    default = changes.pop("default", None)
    return field(default=default, metadata={"setting": dataclasses.replace(spec, **changes)})


_DRAWS_HELP = "Monte Carlo draws of the statistics' reference distributions"
_CONFIDENCE_HELP = "interval level"


@dataclass
class RunConfig:
    """Settings of one study run: one image set, one backbone, its random twins.

    Every field has the default of ``layergain run``; :meth:`validate` checks them all before
    any work. Settings that decide numbers land in the results' attrs (``config``).

    Parameters
    ----------
    data : str, default=None
        Class-per-folder directory or manifest CSV (``path,label[,group]``); None for the bundled
        Kather 2016 sample.
    features : str, default=None
        Precomputed features of the pretrained and at least two random networks
        (:mod:`layergain.features.external`) instead of running a network: ``data`` gives the
        labels and groups, matched by image id (a manifest's ``path`` column or a folder's relative
        paths; the files need not exist). The model, weights, extraction and readout settings are
        then not used; the features' metadata is recorded instead.
    export : str, default=None
        ``extract`` only: also write the features in that layout (one readout and one baseline).
    out : str, default=None
        Output folder; None for ``layergain-out/<set name>`` (:data:`DEFAULT_OUT`).
    model : str, default="efficientnet_lite0"
        Backbone name (EfficientNet-Lite, a torchvision or a timm model).
    model_kwargs : str or dict, default=None
        Keyword arguments of the architecture's constructor as a JSON object (or a dict), e.g.
        ``'{"img_size": 64}'`` for a ViT at 64 px; part of the network's identity.
    weights : str, default=None
        Local state dict of the pretrained weights; None for the bundled or library weights.
    seeds : int, default=5
        Random-weight networks, seeds ``0 .. seeds - 1``; at least 1.
    folds : int, default=5
        Cross-validation folds; at least 2.
    repeats : int, default=1
        Repeats of the k-fold cross-validation with new fold assignments.
    max_per_class : int, default=None
        A stratified random subset of at most this many images per class (at least 2).
    image_size : int, default=224
        Images are resized to ``image_size`` × ``image_size`` px; at least 32.
    readout : list of str, default=None
        Readouts of each probe layer (:data:`READOUTS`; ``grid:3``, ``cov:32`` with a parameter);
        None for the backbone's default (``avg`` for CNNs, the model's ``cls`` or ``mean`` for
        transformers). Several readouts come from one forward pass per network, and each is a
        configuration of its own (see ``baseline``).
    baseline : list of str, default=None
        Random baselines (:data:`BASELINES`); None for ``default``. A run with several readouts
        or baselines writes one result per configuration (readout × baseline) into
        ``out/<readout>_<baseline>/`` and their paired comparison into ``out/configurations/``.
    draws : int, default=20000
        Monte Carlo draws of the statistics' reference distributions; at least 1000.
    margin : float, default=0.02
        Non-inferiority margin of the sweet spot (an accuracy difference), in (0, 1).
    target : {"draw", "fixed"}, default="draw"
        Population of the gain: pretraining vs the random-init distribution with the pretrained
        network as one draw, or this pretrained network.
    confidence : float, default=0.95
        Interval level, in (0, 1).
    similarity_resamples : int, default=200
        Image resamples of the similarity inference (each recomputes every network pair's measure
        on half the images; :func:`layergain.similarity.study_similarity_inference`); at least 2,
        or 0 to leave the inference out, with the four measures only it computes (debiased CKA's
        difference, mutual k-NN, angular shape, RSA; the CKA family and SVCCA/PWCCA stay). Its cost
        grows with the cube of the image count: ``layergain plan`` estimates 21 h for Kather's 5000
        images with 200 resamples on 2 cores.
    seed : int, default=0
        Seed of subsets, folds and statistics (:func:`streams`); at least 0.
    cache : str, default=None
        Feature cache folder; None for ``$XDG_CACHE_HOME/layergain`` or ``~/.cache/layergain``.
    group_column : str, default=None
        Manifest column with patient or slide ids for grouped folds.
    data_card : str, default=None
        Markdown data card of the set; None to look beside the images, then in ``data_cards/``.
    layers : list of str, default=None
        Module names to probe instead of the backbone's default list.
    batch_size : int, default=None
        Images per forward pass; None for 8 on the CPU, 128 on a GPU.
    device : str, default="cpu"
        Torch device of the extraction (``"cpu"``, ``"cuda"``).
    engine : {"folded", "traced", "eager"}, default="folded"
        Feature extraction: hooks with batch norms folded into convolutions, a TorchScript-frozen
        copy, or the network as it is.
    threads : int, default=None
        Torch threads of the extraction, the same on every worker; None for the CPU count.
    probe_c : float, default=1.0
        Inverse L2 strength of the linear probes; > 0.
    jobs : int, default=None
        Local processes of the probes, the similarity measures and their inference, and the
        transferability estimators; None for the CPU count, at most 8.
    workers : int, default=None
        Run work units on a Dask LocalCluster with this many workers.
    scheduler : str, default=None
        Run work units on an existing Dask scheduler (``tcp://host:port``).
    keep_duplicates_apart : bool, default=False
        Near-duplicate images (:func:`layergain.leakage.find_duplicates`) are always searched for
        and reported; by default each cluster becomes a group (merged with the manifest's groups)
        so that no cluster spans two folds. True: report them only.
    duplicate_threshold : float, default=0.625
        Similarity at which two images are near-duplicates, in (0, 1).
    skip_bad_images : bool, default=False
        Leave out unreadable images (listed in the report) instead of stopping.
    quiet : bool, default=False
        No messages or progress bars.
    progress : bool, default=False
        Show progress bars.
    command : str, default=""
        The command line recorded in the results ("" for ``sys.argv``).
    """

    data: str | None = setting(None, "class-per-folder directory or manifest CSV (path,label[,group]); "
                               "default: the bundled Kather 2016 sample", metavar="PATH")
    features: str | None = setting(None, "features computed elsewhere (.nc, .npz, .zarr, or a folder of .h5; "
                                   "layout in layergain.features.external) instead of running a network; the "
                                   "images' labels and groups come from --data, matched by image id", metavar="PATH")
    export: str | None = setting(None, "also write the features in the exchange layout of --features (.nc, .npz, "
                                 ".zarr, or a folder of .h5): one readout and one baseline", metavar="PATH")
    out: str | None = setting(None, f"output folder (default: {DEFAULT_OUT}/<set name>)", metavar="DIR")
    model: str = setting(DEFAULT_MODEL, "efficientnet_lite0 (bundled weights), lite1/lite2, or a torchvision/timm "
                         "model name", metavar="NAME")
    model_kwargs: str | None = setting(None, "JSON object of the architecture's constructor arguments, e.g. "
                                       "'{\"img_size\": 64}' for a ViT at 64 px (timm.create_model / torchvision "
                                       "get_model)", kind="json", metavar="JSON")
    weights: str | None = setting(None, "local state dict of the pretrained weights (default: bundled for "
                                  "EfficientNet-Lite, else the library's download)", metavar="FILE")
    seeds: int = setting(5, "random-weight networks, seeds 0..N-1", kind="int", minimum=1, metavar="N")
    folds: int = setting(5, "cross-validation folds", kind="int", minimum=2, metavar="K")
    repeats: int = setting(1, "repeats of the k-fold CV", kind="int", minimum=1, metavar="R")
    max_per_class: int | None = setting(None, "stratified random subset of N images per class", kind="int",
                                        minimum=2, metavar="N")
    image_size: int = setting(224, "images are resized to PX×PX", kind="int", minimum=32, metavar="PX")
    readout: list[str] | None = setting(  # noqa: RUF009 (a field with metadata; the default is None)
        None, "readouts of each layer, one configuration each, from one forward pass: avg, max, avgmax, gem[:P], "
        "grid[:K], cov[:M] for feature maps, cls, mean, cls+mean for tokens (default: avg for CNNs, the model's "
        "own for transformers)", kind="list", metavar="R,…", choices=READOUTS,
    )
    baseline: list[str] | None = setting(  # noqa: RUF009
        None, "random baselines, one configuration each: " + ", ".join(BASELINES) + " (default: default)",
        kind="list", metavar="B,…", choices=BASELINES,
    )
    draws: int = setting(20000, _DRAWS_HELP, kind="int", minimum=1000, metavar="B")
    margin: float = setting(0.02, "sweet spot: accuracy margin of 'as good as the best layer'", kind="float",
                            between=(0, 1), note=" (an accuracy difference)", metavar="D")
    target: str = setting(TARGETS[0], "population of the gain: pretraining vs the random-init distribution, "
                          "the pretrained network counted as one draw (draw), or this pretrained network (fixed)",
                          choices=TARGETS)
    confidence: float = setting(0.95, _CONFIDENCE_HELP, kind="float", between=(0, 1), metavar="C")
    similarity_resamples: int = setting(200, "image resamples (half-samples) of the similarity inference; "
                                        "0 leaves it out (see `layergain plan` for its cost)",
                                        kind="int", minimum=0, metavar="B")
    seed: int = setting(0, "seed of folds, subsets and resampling", kind="int", minimum=0, metavar="S")
    cache: str | None = setting(None, "feature cache (default $XDG_CACHE_HOME/layergain or ~/.cache/layergain)",
                                metavar="DIR")
    group_column: str | None = setting(None, "manifest column with patient/slide ids for grouped folds "
                                       "(default: 'group' when present)", metavar="NAME")
    data_card: str | None = setting(None, "Markdown data card of the set (default: DATA_CARD.md beside the "
                                    "images, else data_cards/<set name>.md)", metavar="FILE")
    layers: list[str] | None = setting(  # noqa: RUF009 (a field with metadata; the default is None)
        None, "module names to probe instead of the default list", kind="list", metavar="A,B,…"
    )
    batch_size: int | None = setting(None, "images per forward pass (default 8 on the CPU, 128 on a GPU)",
                                     kind="int", minimum=1, metavar="N")
    device: str = setting("cpu", "cpu or cuda")
    engine: str = setting(ENGINES[0], "feature extraction: hooks on the network with batch norms folded into "
                          "convolutions (folded), a TorchScript-frozen copy (traced), or the network as it is "
                          "(eager)", choices=ENGINES)
    threads: int | None = setting(None, "torch threads of the extraction (default: CPU count)", kind="int",
                                  minimum=1, metavar="N")
    probe_c: float = setting(1.0, "inverse L2 strength of the probe", kind="float", above=0, metavar="C")
    jobs: int | None = setting(None, "local processes of the probes, similarity and transferability (default: CPU "
                               "count, at most 8)", kind="int", minimum=1, metavar="N")
    workers: int | None = setting(None, "run work units on a Dask LocalCluster with N workers", kind="int",
                                  minimum=1, metavar="N")
    scheduler: str | None = setting(None, "run work units on an existing Dask cluster (tcp://host:port)",
                                    metavar="ADDR")
    keep_duplicates_apart: bool = setting(False, "report near-duplicate images but do not group them (default: "
                                          "each cluster becomes a group, so no cluster spans two folds)",
                                          kind="flag")
    duplicate_threshold: float = setting(0.625, "similarity at which two images are near-duplicates (calibrated "
                                         "on planted copies: layergain.leakage)", kind="float", between=(0, 1),
                                         metavar="T")
    skip_bad_images: bool = setting(False, "leave out unreadable images (listed in the report) instead of "
                                    "stopping", kind="flag")
    quiet: bool = setting(False, "no progress bars or messages", kind="flag")
    progress: bool = False
    command: str = ""

    def validate(self) -> None:
        """Raise a :class:`~layergain.errors.LayergainError` naming the first setting out of range."""
        _validate(self)
        if self.similarity_resamples == 1:
            raise InputValueError(
                "`similarity_resamples=1` cannot estimate a variance; use 2 or more, or 0 to leave the "
                "similarity inference out."
            )

    def out_dir(self, set_name: str) -> Path:
        """The run's output folder: ``out``, else ``layergain-out/<set name>``."""
        return (Path(self.out) if self.out else Path(DEFAULT_OUT) / set_name).expanduser()


@dataclass
class CompareConfig:
    """Settings of a comparison of runs (image sets) of one backbone (``layergain compare``).

    Parameters
    ----------
    runs : list of str
        Run folders or their results.nc; at least 2.
    out : str, default=None
        Output folder (the comparison needs one).
    draws : int, default=20000
        Monte Carlo draws of the reference distributions; at least 1000.
    confidence : float, default=0.95
        Interval level, in (0, 1).
    alpha : float, default=0.05
        Level of "significant" (max-T adjusted), in (0, 1).
    deep_from : float, default=0.75
        Layers with relative depth >= ``deep_from`` are the "deepest layers", in [0, 1].
    seed : int, default=0
        Seed of the Monte Carlo draws; at least 0.
    """

    runs: list[str] = field(default_factory=list)
    out: str | None = None
    draws: int = _like(RunConfig, "draws", default=RunConfig.draws, help="Monte Carlo draws of the reference "
                       "distributions")
    confidence: float = _like(RunConfig, "confidence", default=RunConfig.confidence)
    alpha: float = setting(0.05, "level of 'significant' (max-T adjusted)", kind="float", between=(0, 1),
                           metavar="A")
    deep_from: float = setting(0.75, "layers with relative depth >= D are the 'deepest layers'", kind="float",
                               between=(0, 1), closed=True, metavar="D")
    seed: int = _like(RunConfig, "seed", default=RunConfig.seed, help="seed of the Monte Carlo draws")

    def validate(self) -> None:
        """Raise a :class:`~layergain.errors.LayergainError` for a setting out of range or fewer than 2 runs."""
        if len(self.runs) < 2:
            raise InputValueError(
                f"`compare` needs at least 2 runs, got {len(self.runs)}. Pass two or more run folders."
            )
        _validate(self)


#: The attr of a run's results that records each statistics setting.
_RUN_ATTRS = {"draws": "n_draws", "margin": "margin", "confidence": "confidence", "target": "statistics_target"}


@dataclass
class StatsConfig:
    """Settings of a recomputation of a run's statistics (``layergain stats``); None keeps the run's.

    Parameters
    ----------
    draws, margin, confidence, target : default=None
        As in :class:`RunConfig`; None for the value the run recorded (else :class:`RunConfig`'s
        default).
    """

    draws: int | None = _like(RunConfig, "draws", help="draws of the reference distributions (default: the run's)")
    margin: float | None = _like(RunConfig, "margin", help=f"sweet-spot margin (default: the run's, else "
                                 f"{RunConfig.margin:g})")
    confidence: float | None = _like(RunConfig, "confidence", help="interval level (default: the run's)")
    target: str | None = _like(RunConfig, "target", help="population of the gain (default: the run's)")

    def resolve(self, attrs: dict) -> dict[str, Any]:
        """Every setting given, else the run's (from its results' ``attrs``), else :class:`RunConfig`'s
        default; validated."""
        kinds = {"draws": int, "margin": float, "confidence": float, "target": str}
        out = {}
        for name, attr in _RUN_ATTRS.items():
            value = getattr(self, name)
            out[name] = kinds[name](attrs.get(attr, getattr(RunConfig, name))) if value is None else value
        _validate(StatsConfig(**out))
        return out
