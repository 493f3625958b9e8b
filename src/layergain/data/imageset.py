"""Labelled image sets: ImageFolder directories and CSV manifests, validated up front."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from layergain.errors import DataError, InputValueError, NotEnoughDataError

__all__ = ["IMAGE_EXTENSIONS", "ImageSet", "bundled_sample_path", "load_image_set"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm")
MANIFEST_NAME = "manifest.csv"
BUNDLED_NAME = "kather2016_sample"


def bundled_sample_path() -> Path:
    """Manifest of the bundled sample of Kather et al. (2016), CC BY 4.0."""
    return Path(__file__).resolve().parent / "sample" / "kather2016" / MANIFEST_NAME


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set, in a fixed order.

    Attributes
    ----------
    name : str
        Short name of the set (folder name, or ``kather2016_sample`` for the bundled one).
    root : Path
        Folder that ``relpaths`` are relative to.
    relpaths : tuple of str
        Image paths relative to ``root`` (POSIX separators).
    labels : ndarray of int of shape (n_images,)
        Class index of each image into ``class_names``.
    class_names : tuple of str
        Class names, sorted.
    groups : ndarray of str of shape (n_images,) or None
        Patient / slide id of each image, when known; folds keep a group together.
    group_column : str or None
        Manifest column the groups came from.
    source : {"folder", "manifest"}
        How the set was described.
    sha256 : tuple of str
        SHA-256 of each image file's bytes (features are cached by it).
    skipped : tuple of str
        Images left out because they could not be read (only with ``skip_bad_images=True``),
        each as ``"relpath: reason"``.
    formats : dict
        What the files are: ``{"PNG RGB": 150, "JPEG CMYK": 2, ...}`` under ``"kinds"`` and the
        smallest and largest width × height under ``"min_size"`` / ``"max_size"``.
    """

    name: str
    root: Path
    relpaths: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    groups: np.ndarray | None
    group_column: str | None
    source: str
    sha256: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())
    formats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.relpaths)

    @property
    def paths(self) -> list[Path]:
        """Absolute paths of the images."""
        return [self.root / p for p in self.relpaths]

    @property
    def counts(self) -> dict[str, int]:
        """Number of images per class."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    @property
    def content_sha256(self) -> str:
        """One checksum of the whole set: image checksums, labels and groups, in order."""
        h = hashlib.sha256()
        groups = self.groups if self.groups is not None else [""] * len(self)
        for digest, label, group in zip(self.sha256, self.labels, groups):
            h.update(f"{digest}\t{self.class_names[label]}\t{group}\n".encode())
        return h.hexdigest()

    def subset(self, index: np.ndarray) -> ImageSet:
        """The images at ``index`` (in that order), same classes."""
        index = np.asarray(index, dtype=np.intp)
        return replace(
            self,
            relpaths=tuple(self.relpaths[i] for i in index),
            labels=self.labels[index],
            groups=None if self.groups is None else self.groups[index],
            sha256=tuple(self.sha256[i] for i in index) if self.sha256 else (),
        )


def load_image_set(
    path: str | Path | None = None,
    *,
    group_column: str | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
    min_classes: int = 2,
    images: bool = True,
) -> ImageSet:
    """Read and validate a labelled image set.

    Parameters
    ----------
    path : str or Path, default=None
        A folder with one sub-folder per class (ImageFolder layout), a folder holding a
        ``manifest.csv``, or a CSV manifest with columns ``path,label[,group]`` (extra
        columns allowed; relative paths resolve against the manifest's folder).
        ``None`` selects the bundled sample of Kather et al. (2016).
    group_column : str, default=None
        Manifest column holding the patient / slide id. ``None`` uses ``group`` when the
        manifest has it.
    max_per_class : int, default=None
        Keep at most this many images per class (a seeded random subset, original order kept).
    seed : int, default=0
        Seed of that subset.
    skip_bad_images : bool, default=False
        Leave out images that cannot be read, and list them in ``ImageSet.skipped``, instead
        of raising.
    min_classes : int, default=2
        Fewest classes accepted.
    images : bool, default=True
        Read and check the image files. ``False``: only the labels, groups and ids (a manifest's
        ``path`` column as written, a folder's relative paths); the files need not exist and
        ``sha256`` is empty. For features computed elsewhere, matched to the images by these ids.

    Raises
    ------
    DataError
        If the path does not exist, a listed file is missing or unreadable, a class folder is
        empty, a manifest lacks a column, or one image appears twice.
    NotEnoughDataError
        If fewer than ``min_classes`` classes remain.
    """
    if path is None:
        path = bundled_sample_path()
        name = BUNDLED_NAME
    else:
        path = Path(path).expanduser()
        name = None
    if not path.exists():
        raise DataError(f"data path does not exist: {path}. Pass a class-per-folder directory or a manifest CSV.")
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        path = path / MANIFEST_NAME
    if path.is_dir():
        relpaths, labels, groups, empty = _scan_folder(path)
        root, source, group_column = path, "folder", None
        if empty:
            raise DataError(
                f"class folder(s) with no images in {path}: {', '.join(empty)}. "
                "Remove the empty folder(s) or add images."
            )
        name = name or path.name
    elif path.suffix.lower() == ".csv":
        relpaths, labels, groups, group_column = _read_manifest(path, group_column, require_files=images)
        root, source = path.parent, "manifest"
        name = name or (path.parent.name if path.name == MANIFEST_NAME else path.stem)
    else:
        raise DataError(
            f"data path is neither a folder nor a .csv manifest: {path}. "
            "Pass a class-per-folder directory or a CSV with columns path,label[,group]."
        )
    if group_column is not None and source == "folder":
        raise InputValueError("`group_column` needs a manifest; a plain folder has no group column.")
    if not relpaths:
        raise DataError(f"no images found in {path} (extensions: {', '.join(IMAGE_EXTENSIONS)}).")
    _check_duplicate_paths(relpaths, path)
    class_names = tuple(sorted(set(labels)))
    label_index = {c: i for i, c in enumerate(class_names)}
    image_set = ImageSet(
        name=name,
        root=root,
        relpaths=tuple(relpaths),
        labels=np.array([label_index[c] for c in labels], dtype=np.int64),
        class_names=class_names,
        groups=None if groups is None else np.array(groups, dtype=str),
        group_column=group_column,
        source=source,
        sha256=(),
    )
    if max_per_class is not None:
        image_set = _subsample(image_set, max_per_class, seed)
    if images:
        image_set = _checksum_and_verify(image_set, skip_bad_images)
        _check_same_image_two_classes(image_set)
    n_classes = int(np.unique(image_set.labels).size)
    if n_classes < min_classes:
        raise NotEnoughDataError(
            f"image set {name!r} has {n_classes} class(es) with images, while a minimum of "
            f"{min_classes} is required for a classification probe. Add images of other classes."
        )
    return image_set


def _scan_folder(root: Path) -> tuple[list[str], list[str], None, list[str]]:
    relpaths, labels, empty = [], [], []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{root} has no class sub-folders. Use one sub-folder per class (ImageFolder layout) "
            "or pass a manifest CSV."
        )
    for class_dir in class_dirs:
        files = sorted(
            p
            for p in class_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not files:
            empty.append(class_dir.name)
        for f in files:
            relpaths.append(f.relative_to(root).as_posix())
            labels.append(class_dir.name)
    return relpaths, labels, None, empty


def _read_manifest(path: Path, group_column: str | None, require_files: bool = True
                   ) -> tuple[list[str], list[str], list[str] | None, str | None]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest {path} is not UTF-8 text ({exc.reason}). Save it as UTF-8.") from exc
    except csv.Error as exc:
        raise DataError(f"manifest {path} is not valid CSV: {exc}.") from exc
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(
            f"manifest {path} lacks column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'}. "
            "The first line must name at least path,label."
        )
    if group_column is None and "group" in columns:
        group_column = "group"
    if group_column is not None and group_column not in columns:
        raise InputValueError(
            f"`group_column` {group_column!r} is not a column of {path}; columns are {', '.join(columns)}."
        )
    relpaths, labels, groups = [], [], []
    missing_files = []
    for line, row in enumerate(rows, start=2):
        rel, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not rel or not label:
            raise DataError(f"manifest {path}, line {line}: empty path or label. Fill it in or remove the line.")
        full = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        if not full.is_file():
            missing_files.append(rel)
        relpaths.append(rel if not Path(rel).is_absolute() else str(full))
        labels.append(label)
        if group_column is not None:
            group = (row.get(group_column) or "").strip()
            if not group:
                raise DataError(
                    f"manifest {path}, line {line}: empty {group_column!r}. Give every image a group "
                    "or choose another `group_column`."
                )
            groups.append(group)
    if missing_files and require_files:
        shown = ", ".join(missing_files[:3]) + (" …" if len(missing_files) > 3 else "")
        raise DataError(
            f"manifest {path} lists {len(missing_files)} file(s) that do not exist: {shown}. "
            "Paths resolve against the manifest's folder; fix or remove those lines."
        )
    return relpaths, labels, (groups if group_column is not None else None), group_column


def _check_duplicate_paths(relpaths: list[str], where: Path) -> None:
    dup = [p for p, n in Counter(relpaths).items() if n > 1]
    if dup:
        raise DataError(
            f"{where} lists {len(dup)} path(s) more than once, e.g. {dup[0]}. Each image may appear once."
        )


def _subsample(image_set: ImageSet, max_per_class: int, seed: int) -> ImageSet:
    if max_per_class < 1:
        raise InputValueError(f"`max_per_class` must be >= 1, got {max_per_class}.")
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(len(image_set.class_names)):
        idx = np.flatnonzero(image_set.labels == c)
        if idx.size > max_per_class:
            idx = np.sort(rng.choice(idx, size=max_per_class, replace=False))
        keep.append(idx)
    return image_set.subset(np.sort(np.concatenate(keep)))


def _checksum_and_verify(image_set: ImageSet, skip_bad_images: bool) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    digests, keep, skipped = [], [], []
    kinds: dict[str, int] = {}
    sizes = []
    for i, p in enumerate(image_set.paths):
        try:
            data = p.read_bytes()
            if not data:
                raise DataError("the file is empty (0 bytes)")
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # a full decode: verify() misses truncated JPEGs
                kind = f"{im.format or 'unknown'} {im.mode}"
                size = im.size
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError, DataError, Image.DecompressionBombError) as exc:
            reason = str(exc) or type(exc).__name__
            if not skip_bad_images:
                raise DataError(
                    f"cannot read image {p}: {reason}. Remove or replace the file, or pass "
                    "`skip_bad_images=True` to leave unreadable images out (they are listed in the report)."
                ) from exc
            skipped.append(f"{image_set.relpaths[i]}: {reason}")
            continue
        digests.append(hashlib.sha256(data).hexdigest())
        keep.append(i)
        kinds[kind] = kinds.get(kind, 0) + 1
        sizes.append(size)
    out = image_set.subset(np.array(keep, dtype=np.intp))
    formats = {"kinds": dict(sorted(kinds.items()))}
    if sizes:
        area = [w * h for w, h in sizes]
        formats |= {"min_size": list(sizes[int(np.argmin(area))]), "max_size": list(sizes[int(np.argmax(area))])}
    return replace(out, sha256=tuple(digests), skipped=tuple(skipped), formats=formats)


def _check_same_image_two_classes(image_set: ImageSet) -> None:
    first: dict[str, int] = {}
    for i, digest in enumerate(image_set.sha256):
        j = first.setdefault(digest, i)
        if j != i and image_set.labels[j] != image_set.labels[i]:
            a, b = image_set.relpaths[j], image_set.relpaths[i]
            raise DataError(
                f"the same image appears in two classes: {a} ({image_set.class_names[image_set.labels[j]]}) "
                f"and {b} ({image_set.class_names[image_set.labels[i]]}). Remove one copy."
            )
