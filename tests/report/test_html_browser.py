"""The HTML reports in headless Chromium, at laptop and phone widths.

The report itself has no script. To measure it, the test loads a copy with one added measuring
script into an iframe of the target width (a real viewport of that many CSS pixels; Chromium's
window cannot be narrower than 500 px) and reads the result from ``--dump-dom``: every image
decoded, nothing wider than the viewport, readable text. Screenshots must not be blank.
Skipped only where no Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
WIDTHS = {"phone": 390, "laptop": 1280}

_MEASURE = """<script>
addEventListener('load', () => {
  const root = document.documentElement, width = root.clientWidth;
  const images = [...document.images].map(i => ({
    decoded: i.complete && i.naturalWidth > 0, right: i.getBoundingClientRect().right,
    src: i.src.slice(0, 22)}));
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => !e.parentElement.closest('.scroll') && e.getBoundingClientRect().right > width + 0.5)
    .map(e => e.tagName + (e.className ? '.' + e.className : ''));
  parent.postMessage(JSON.stringify({
    viewport: innerWidth, width, scrollWidth: root.scrollWidth, images, wide,
    fontPx: parseFloat(getComputedStyle(document.body).fontSize), title: document.title,
    tables: document.querySelectorAll('table').length}), '*');
});
</script>"""

_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="page.html" style="width:{width}px;height:900px;border:0"></iframe><pre id="out"></pre>
<script>addEventListener('message', e => {{ document.getElementById('out').textContent = e.data; }});</script>
</body></html>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180
    )


def measure(report: Path, width: int, tmp: Path) -> dict:
    """Layout facts of ``report`` rendered in a viewport ``width`` CSS pixels wide."""
    tmp.mkdir(parents=True, exist_ok=True)
    page = report.read_text()
    # let the one measuring script run; images still come from data: only
    page = page.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    (tmp / "page.html").write_text(page.replace("</body>", _MEASURE + "</body>", 1))
    (tmp / "frame.html").write_text(_FRAME.format(width=width))
    res = _chromium(
        [
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            "--dump-dom",
            (tmp / "frame.html").as_uri(),
        ],
        tmp / "profile",
    )
    found = re.search(r'<pre id="out">([^<]+)</pre>', res.stdout)
    assert found, f"no measurement from Chromium: {res.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(report: Path, width: int, tmp: Path) -> Image.Image:
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / f"shot-{width}.png"
    _chromium([f"--screenshot={target}", f"--window-size={width},1600", report.as_uri()], tmp / "profile")
    return Image.open(target).convert("RGB")


def _check_layout(facts: dict, width: int, n_images: int) -> None:
    assert facts["viewport"] == width
    assert facts["scrollWidth"] <= facts["width"], f"page scrolls sideways: {facts}"
    assert facts["wide"] == [], f"elements wider than the viewport: {facts['wide'][:5]}"
    assert len(facts["images"]) == n_images
    for image in facts["images"]:
        assert image["decoded"] and image["src"].startswith("data:image/png;base64"), image
        assert image["right"] <= facts["width"] + 0.5, image
    assert facts["fontPx"] >= 14


def _not_blank(image: Image.Image, width: int) -> None:
    assert image.width == width
    grey = image.convert("L")
    dark = sum(grey.histogram()[:200]) / (grey.width * grey.height)
    assert dark > 0.02, f"screenshot nearly blank ({dark:.3%} dark pixels)"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50  # text and figures, not a flat page


REPORTS = {  # fixture -> (figures, tables, title); a run has seven figures: the five of the probes and
    # the similarity-difference and transferability-tau figures (and their tables) of the inference and
    # the estimators; a comparison of runs with tau tables has their tau-by-set figure and table
    "kather_run": (7, 6, "layergain report: kather2016_sample"),
    "comparison_run": (4, 5, "layergain comparison: crc_first_half, crc_second_half"),
}


@pytest.mark.parametrize("device", WIDTHS)
@pytest.mark.parametrize("which", REPORTS)
def test_report_renders(request, tmp_path, which, device):
    """Every figure decoded and inside the viewport, no sideways scrolling, readable text, not blank."""
    width, (n_figures, n_tables, title) = WIDTHS[device], REPORTS[which]
    report = request.getfixturevalue(which).out / "report.html"
    facts = measure(report, width, tmp_path / "measure")
    _check_layout(facts, width, n_images=n_figures)
    assert facts["title"].startswith(title) and facts["tables"] == n_tables
    _not_blank(screenshot(report, width, tmp_path / "shots"), width)


def test_the_check_catches_overflow_and_broken_images(tmp_path):
    """The measurement can fail: a too-wide block and an undecodable image are found."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src '
        "'none'; img-src data:; style-src 'unsafe-inline'\"></head><body><h1>x</h1>"
        '<div style="width:900px">wide</div><img src="data:image/png;base64,AAAA">'
        '<img src="https://example.org/a.png"></body></html>'
    )
    facts = measure(bad, 390, tmp_path / "measure")
    assert facts["scrollWidth"] > facts["width"] and "DIV" in facts["wide"]
    assert [i["decoded"] for i in facts["images"]] == [False, False]
