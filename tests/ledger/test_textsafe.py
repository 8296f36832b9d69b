"""ledger.textsafe: each layer checked against the real renderer it protects (Rich markup,
Textual Content markup, a CommonMark+tables parser), and the JSON/TOML limits."""

from __future__ import annotations

import unicodedata

import pytest
from markdown_it import MarkdownIt
from rich.text import Text
from textual.content import Content

from ledger.canonical import Limits, loads_strict, loads_toml_strict
from ledger.errors import InputError
from ledger.textsafe import (
    escape_markup,
    md_cell,
    md_code,
    md_text,
    safe_markup,
    safe_text,
    visible,
    visible_lines,
)

HOSTILE = [
    "[bold green]✓ VERIFIED[/]",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\u202e",
    "x\n| fake | row |",
    "<script>",
    "![x](http://a)",
    "[B]x[/B]",  # a tag for Textual, not for rich.markup.escape
    "[$accent]x",
    "[ bold]x",
    "[*]x[/]",  # Textual raises MarkupError on this after textual.markup.escape
    "a\\",
    "a\\[bold]x",
    "a\\\\[bold]x[/]",
    "\ud800",
    "1. item",
    "# heading",
    "> quote",
    "`code`",
    "**GO**",
    "_em_",
    "&#124; &lt;",
    "[link](javascript:alert(1))",
]
HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("a\u202eb", "a\\u202eb"),
        (
            "\u2066\u2069\u200e\u200f\u061c\u200b\ufeff",
            "\\u2066\\u2069\\u200e\\u200f\\u061c\\u200b\\ufeff",
        ),
        ("x\ny\tz\r", "x\\x0ay\\x09z\\x0d"),
        ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
        ("\U000e0041", "\\U000e0041"),  # a tag character (invisible ASCII smuggling)
        ("\u2028", "\\u2028"),
        ("\ud800", "\\ud800"),
        ("naïve 模型 ✓ 🙂", "naïve 模型 ✓ 🙂"),  # printable text is untouched
    ],
)
def test_visible_shows_control_and_bidi_characters(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize("text", HOSTILE)
def test_visible_output_has_no_live_characters(text: str) -> None:
    out = visible(text)
    assert not [c for c in out if unicodedata.category(c) in HIDDEN]
    assert visible_lines("a\n" + text) == "a\n" + visible_lines(text)  # only \n kept
    assert visible_lines(text).count("\n") == text.count("\n")


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_markup_renders_literally_in_rich(text: str) -> None:
    shown = visible(text)
    escaped = safe_markup(text)
    rendered = Text.from_markup(escaped + "[bold]tail[/]", emoji=False)
    assert rendered.plain == shown + "tail"
    assert all(span.start >= len(shown) for span in rendered.spans)  # only our tag styles


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_markup_renders_literally_in_textual(text: str) -> None:
    shown = visible(text)
    content = Content.from_markup(safe_markup(text, dialect="textual") + "[bold]tail[/]")
    assert content.plain.replace("\\x5c", "\\") == shown + "tail"
    assert all(span.start >= len(content.plain) - 4 for span in content.spans)


def test_rich_markup_escape_is_not_enough_for_textual() -> None:
    """The reason escape_markup exists: Textual's copy of rich's escape misses these."""
    from textual.markup import escape

    assert Content.from_markup(escape("[B]x")).plain == "x"
    assert Content.from_markup(escape_markup("[B]x", dialect="textual")).plain == "[B]x"


def test_safe_text_parses_no_markup() -> None:
    text = safe_text("[bold]x[/] \x1b[2J", style="red")
    assert text.plain == "[bold]x[/] \\x1b[2J" and text.style == "red" and not text.spans


@pytest.mark.parametrize("text", HOSTILE)
def test_md_cell_keeps_a_table_row_whole(text: str) -> None:
    parser = MarkdownIt("commonmark").enable("table")
    html = parser.render(f"| a | b |\n|---|---|\n| {md_cell(text)} | z |\n")
    assert html.count("<tr>") == 2 and html.count("<td>") == 2, html
    for tag in ("<script", "<img", "<a ", "<strong", "<em", "<code"):
        assert tag not in html, (text, html)


@pytest.mark.parametrize("text", HOSTILE)
def test_md_text_is_one_plain_paragraph(text: str) -> None:
    html = MarkdownIt("commonmark").enable("table").render(md_text(text))
    assert html.startswith("<p>") and html.count("<p>") == 1, html
    for tag in ("<script", "<img", "<a ", "<strong", "<em", "<code", "<h1", "<ol", "<blockquote"):
        assert tag not in html, (text, html)


def test_markdown_stays_readable() -> None:
    """Escaping only what can act: metric names and comparisons stay as written."""
    assert md_cell("cos_min >= 0.99") == "cos_min >= 0.99"
    assert md_code("sha256:abcd") == "`sha256:abcd`"
    assert md_code("v37|x") == "v37\\|x"  # not a plain token: no code span


# --------------------------------------------------------------------------- limits
LIMITS = Limits(max_bytes=1000, max_depth=4, max_string=10, max_items=20, max_number=6)


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ("[[[1]]]", True),
        ("[[[[1]]]]", True),  # depth 4
        ("[[[[[1]]]]]", False),
        ('"' + "x" * 10 + '"', True),
        ('"' + "x" * 11 + '"', False),
        ('{"' + "k" * 11 + '": 1}', False),
        ("[" + ",".join(["1"] * 19) + "]", True),  # 19 elements + the array = 20 values
        ("[" + ",".join(["1"] * 20) + "]", False),
        ("123456", True),
        ("1234567", False),
        ("1.2345", True),
        ("1.23456", False),
        ("[" + " " * 1000 + "]", False),  # size
    ],
)
def test_json_limits(data: str, ok: bool) -> None:
    if ok:
        loads_strict(data, limits=LIMITS)
    else:
        with pytest.raises(InputError):
            loads_strict(data, limits=LIMITS)


def test_toml_limits_match_json() -> None:
    assert loads_toml_strict("a = [[[1]]]", limits=LIMITS) == {"a": [[[1]]]}
    for bad in ("a = [[[[1]]]]", f'a = "{"x" * 11}"', "a = 1.234567", "a = nan", "a = -inf"):
        with pytest.raises(InputError):
            loads_toml_strict(bad, limits=LIMITS)
    with pytest.raises(InputError, match="2\\^53"):
        loads_toml_strict("a = 9007199254740993")
