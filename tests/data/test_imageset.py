"""Image sets: the bundled sample, folders, manifests, and every way they can be wrong."""

from __future__ import annotations

import csv
import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from layergain.data import bundled_sample_path, load_image_set
from layergain.errors import DataError, InputValueError, NotEnoughDataError
from tests.helpers import bundled_rows, make_folder_set


def test_bundled_sample_is_stratified_grouped_and_checksummed():
    s = load_image_set()
    assert s.name == "kather2016_sample"
    assert len(s.class_names) == 8
    assert set(s.counts.values()) == {20}
    assert s.group_column == "group" and s.groups is not None
    # every checksum matches the manifest's (computed independently from the file bytes)
    expected = {row["path"]: row["sha256"] for row in bundled_rows()}
    assert [expected[p] for p in s.relpaths] == list(s.sha256)
    # 5-fold grouped CV is possible: 10 slides
    assert np.unique(s.groups).size >= 5


def test_bundled_sample_carries_its_licence():
    text = (bundled_sample_path().parent / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in text and "Kather" in text and "10.5281/zenodo.53169" in text


def test_folder_layout(tmp_path):
    root = make_folder_set(tmp_path / "set", per_class=3, classes=3)
    (root / "01_TUMOR" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    s = load_image_set(root)
    assert s.source == "folder" and s.groups is None
    assert s.class_names == ("01_TUMOR", "02_STROMA", "03_COMPLEX")
    assert len(s) == 9 and all(p.is_file() for p in s.paths)


def test_manifest_relative_paths_groups_and_group_column(tmp_path):
    root = make_folder_set(tmp_path / "imgs", per_class=3, classes=2)
    rows = [
        {"path": f"imgs/{p.parent.name}/{p.name}", "label": p.parent.name, "patient": f"p{i % 3}", "x": "1"}
        for i, p in enumerate(sorted(root.rglob("*.png")))
    ]
    manifest = tmp_path / "set.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "patient", "x"])
        w.writeheader()
        w.writerows(rows)
    s = load_image_set(manifest, group_column="patient")
    assert s.name == "set" and s.source == "manifest" and len(s) == 6
    assert list(s.groups) == [r["patient"] for r in rows]
    with pytest.raises(InputValueError, match="`group_column` 'slide' is not a column"):
        load_image_set(manifest, group_column="slide")


def test_max_per_class_is_a_seeded_stratified_subset():
    a = load_image_set(max_per_class=5, seed=1)
    b = load_image_set(max_per_class=5, seed=1)
    c = load_image_set(max_per_class=5, seed=2)
    assert set(a.counts.values()) == {5}
    assert a.relpaths == b.relpaths and a.relpaths != c.relpaths
    assert list(a.relpaths) == sorted(a.relpaths, key=load_image_set().relpaths.index)  # original order kept


def test_missing_path():
    with pytest.raises(DataError, match="data path does not exist: .*nowhere"):
        load_image_set("/nowhere/at/all")


def test_empty_class_folder(tmp_path):
    root = make_folder_set(tmp_path / "set", per_class=2, classes=2)
    (root / "09_EMPTYCLASS").mkdir()
    with pytest.raises(DataError, match="class folder.* with no images .*09_EMPTYCLASS.*Remove the empty folder"):
        load_image_set(root)


def test_single_class(tmp_path):
    root = make_folder_set(tmp_path / "set", per_class=3, classes=1)
    with pytest.raises(NotEnoughDataError, match="1 class\\(es\\) with images, while a minimum of 2"):
        load_image_set(root)


def test_manifest_errors(tmp_path):
    root = make_folder_set(tmp_path / "imgs", per_class=2, classes=2)
    files = sorted(root.rglob("*.png"))
    bad = tmp_path / "nolabel.csv"
    bad.write_text("path,klass\nx.png,a\n")
    with pytest.raises(DataError, match="lacks column\\(s\\) label"):
        load_image_set(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\nimgs/none.png,a\n" + f"imgs/{files[0].parent.name}/{files[0].name},a\n")
    with pytest.raises(DataError, match="lists 1 file\\(s\\) that do not exist: imgs/none.png"):
        load_image_set(missing)
    dup = tmp_path / "dup.csv"
    line = f"imgs/{files[0].parent.name}/{files[0].name}"
    dup.write_text(f"path,label\n{line},a\n{line},a\n")
    with pytest.raises(DataError, match="more than once"):
        load_image_set(dup)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path,label\nimgs/é.png,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_image_set(latin)


@pytest.mark.parametrize("damage", ["truncated", "zero-byte", "not-an-image"])
def test_unreadable_image_is_named_and_can_be_skipped(tmp_path, damage):
    root = make_folder_set(tmp_path / "set", per_class=3, classes=2)
    victim = sorted(root.rglob("*.png"))[1]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:2000])
    elif damage == "zero-byte":
        victim.write_bytes(b"")
    else:
        victim.write_text("<html>this is not a png</html>")
    with pytest.raises(DataError, match=f"cannot read image .*{victim.name}.*`skip_bad_images=True`"):
        load_image_set(root)
    s = load_image_set(root, skip_bad_images=True)
    assert len(s) == 5 and len(s.skipped) == 1 and victim.name in s.skipped[0]


def test_same_image_in_two_classes(tmp_path):
    root = make_folder_set(tmp_path / "set", per_class=2, classes=2)
    a = sorted((root / "01_TUMOR").iterdir())[0]
    shutil.copyfile(a, root / "02_STROMA" / "copy.png")
    with pytest.raises(DataError, match="the same image appears in two classes"):
        load_image_set(root)


def test_odd_modes_and_names_are_read(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for mode, name in [("L", "grey level.png"), ("RGBA", "alpha ä.png"), ("P", "palette.png"), ("CMYK", "cmyk.jpg")]:
            arr = rng.integers(0, 255, (40, 60, len(mode) if mode in ("RGBA", "CMYK") else 1), dtype=np.uint8)
            img = Image.fromarray(arr.squeeze(), "L" if mode in ("L", "P") else mode)
            if mode == "P":
                img = img.convert("P")
            img.save(tmp_path / label / name)
    s = load_image_set(tmp_path)
    assert len(s) == 8
    assert len(set(s.sha256)) == 8
    assert hashlib.sha256((tmp_path / s.relpaths[0]).read_bytes()).hexdigest() == s.sha256[0]
