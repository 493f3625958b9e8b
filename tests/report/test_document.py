"""The document model: one set of blocks, the same content in Markdown and in self-contained HTML."""

from __future__ import annotations

import re

import pytest

from layergain.report import fmt
from layergain.report.document import (
    Bullets,
    Document,
    Figure,
    Heading,
    Paragraph,
    Preformatted,
    Table,
    _inline,
    slug,
    to_html,
    to_markdown,
)


def test_inline_markup():
    html = _inline("**Sweet spot: `stem_1`** (a*b) *x* `a**b<c` [Findings](#findings) <i>")
    assert html == (
        "<strong>Sweet spot: <code>stem_1</code></strong> (a*b) <em>x</em> <code>a**b&lt;c</code> "
        '<a href="#findings">Findings</a> &lt;i&gt;'
    )


def test_no_link_leaves_the_document():
    assert "<a" not in _inline("[paper](https://example.org/x) and [file](results.nc)")


@pytest.mark.parametrize(
    "text, anchor",
    [
        ("Findings", "findings"),
        ("Per-layer results", "per-layer-results"),
        ("Does `gain` differ? (sets)", "does-gain-differ-sets"),
    ],
)
def test_slug_as_github(text, anchor):
    assert slug(text) == anchor


def _doc(tmp_path):
    from PIL import Image

    (tmp_path / "figures").mkdir()
    Image.new("RGB", (8, 6), "white").save(tmp_path / "figures" / "f.png")
    doc = Document("Title × `x`")
    doc.add(
        Heading("Findings"),
        Bullets(["one **two**", "three | four"]),
        Paragraph("text"),
        Table(["a", "b"], [["`x|y`", "1.0"]], caption="Cap.", notes="Note."),
        Figure("figures/f.png", "Figure 1. A figure.", alt="alt text"),
        Preformatted("code <b>"),
    )
    doc.add(doc.contents())
    return doc


def test_markdown_and_html_say_the_same(tmp_path):
    doc = _doc(tmp_path)
    md, html = to_markdown(doc), to_html(doc, tmp_path)
    assert md.startswith("# Title × `x`\n")
    assert "| `x\\|y` | 1.0 |" in md and "|:---|---:|" in md
    assert "![alt text](figures/f.png)" in md and "- [Findings](#findings)" in md
    assert '<h2 id="findings">Findings</h2>' in html and '<a href="#findings">Findings</a>' in html
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="alt text">', html)
    assert "<pre>code &lt;b&gt;</pre>" in html and '<td class="l"><code>x|y</code></td>' in html


def test_html_is_self_contained(tmp_path):
    html = to_html(_doc(tmp_path), tmp_path)
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"(src|href)=\"(?!data:|#)", html)
    assert not re.search(r"url\(|@import|https?://", html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_formatting_of_missing_and_small_values():
    assert fmt.pval(0.0004) == "< 0.001" and fmt.pval(float("nan")) == "n/a" and fmt.pval(None) == "n/a"
    assert fmt.p_is(0.0004) == "p < 0.001" and fmt.p_is(0.05) == "p = 0.050"
    assert fmt.est_ci(0.1234, -0.01, 0.2) == "+0.123 [-0.010, +0.200]"
    assert fmt.params(928) == "928" and fmt.params(360_288) == "360.3 k" and fmt.params(3_371_008) == "3.37 M"
    assert fmt.level(0.95) == "95 %" and fmt.level(0.9) == "90 %"
