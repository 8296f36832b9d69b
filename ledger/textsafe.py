"""Hostile text made inert for display: three small layers, one per output syntax.

Every string that comes from an entry, envelope, policy, bundle or model folder is hostile
until shown. Pick the layer for where it goes:

1. `escape_markup(s)`: Rich / Textual console markup (`[bold]`, `[$accent]`, `[@click=…]`).
   Use it only where a string is interpolated into markup; prefer `safe_text(s)`, which
   builds a `rich.text.Text` and never parses markup at all.
2. `visible(s)`: every terminal output. Control characters (C0, DEL, C1, hence every
   ESC / CSI / OSC sequence), bidi and other format characters (U+202A–202E, U+2066–2069,
   U+200E/F, U+061C, zero-width ones, tag characters), line/paragraph separators and lone
   surrogates become visible escapes such as `\\x1b`, `\\u202e`, `\\U000e0041`. Printable
   text, including non-ASCII letters and emoji, is unchanged.
3. `md_cell(s)` / `md_text(s)` / `md_code(s)`: Markdown (GFM). `visible()` first (so a
   newline cannot start a row), then backslash, pipes, backticks, emphasis, link/image
   brackets escaped, `<` (and `&` before an entity) turned into entities. `md_text` also neutralises
   block markers at the start; `md_code` keeps plain tokens (digests, names) in a code span.

Backslashes are not doubled by `visible()`: a literal `\\x1b` typed into a name looks like an
escaped ESC, which is cosmetic; `--json` always carries the exact string.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.text import Text

# --------------------------------------------------------------------------- 1. markup
_MARKUP_BRACKET = re.compile(r"(\\*)\[")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)$")


def escape_markup(s: str, *, dialect: Literal["rich", "textual"] = "rich") -> str:
    """`s` as console markup that renders literally (Rich's, or Textual's `Content` markup).

    `rich.markup.escape` (and Textual's copy of it) only escape `[` when it looks like a Rich
    tag (`[a-z#/@]…]`); Textual's parser also takes `[B]`, `[$accent]`, `[ bold]`, `[_]` as
    tags and raises on `[*]…[/]`. Both parsers read `\\[` as a literal `[`, so every `[` is
    escaped. Backslashes differ: Rich reads `\\\\[` as a backslash then a tag, so a backslash
    run before `[` or at the end (where it would escape markup that follows) is doubled;
    Textual cannot put a literal backslash before a tag, so there a trailing run is shown as
    `\\x5c`. Rich's `:emoji:` codes are not markup: print with `emoji=False` (our consoles do).
    """
    if dialect == "textual":
        s = s.replace("[", "\\[")
        return _TRAILING_BACKSLASHES.sub(lambda m: "\\x5c" * len(m.group(1)), s)
    s = _MARKUP_BRACKET.sub(lambda m: m.group(1) * 2 + "\\[", s)
    return _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, s)


# --------------------------------------------------------------------------- 2. terminal
#: categories shown as escapes: control, format (bidi, zero-width, tags), surrogate, line and
#: paragraph separators
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: candidates: anything but printable ASCII (the common case passes the regex untouched)
_CANDIDATE = re.compile(r"[^\x20-\x7e]")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _visible_match(match: re.Match[str]) -> str:
    ch = match.group(0)
    return _escape_char(ch) if unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch


def visible(s: str) -> str:
    """`s` with control, bidi/format and separator characters shown as `\\xNN`/`\\uNNNN`."""
    if s.isascii() and s.isprintable():
        return s
    return _CANDIDATE.sub(_visible_match, s)


def visible_lines(s: str) -> str:
    """Like `visible`, but keeps `\\n` as a line break (multi-line text we laid out)."""
    return "\n".join(visible(line) for line in s.split("\n"))


def safe_text(s: object, style: str = "") -> Text:
    """A Rich `Text` of `visible(str(s))`: no markup is parsed, nothing reaches the terminal raw."""
    from rich.text import Text  # lazy: the core needs rich only when it renders

    return Text(visible(str(s)), style=style)


def safe_markup(s: object, *, dialect: Literal["rich", "textual"] = "rich") -> str:
    """`visible` then `escape_markup`: for the rare place where a string goes into markup."""
    return escape_markup(visible(str(s)), dialect=dialect)


# --------------------------------------------------------------------------- 3. markdown
#: ASCII punctuation with a meaning inside a GFM paragraph or table cell (CommonMark allows a
#: backslash before any ASCII punctuation, so over-escaping is harmless); `_` only where it can
#: open or close emphasis (not inside a word like `cos_min`)
_MD_PUNCT = re.compile(r"([\\`*\[\]!|~#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
#: `<` opens HTML and autolinks, `&` an entity (`&#124;`); `>` matters only at a line start
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_HTML_RE = re.compile(r"<|&(?=#?[A-Za-z0-9]+;)")
#: block markers that change a line's meaning when they start it
_MD_BLOCK_START = re.compile(r"^(\s*)(?:([-+=>])|(\d+)([.)]))")


def md_cell(s: object) -> str:
    """`s` as the text of one GFM table cell (or inline text): one line, no markup, no HTML."""
    text = visible(str(s))
    text = _MD_HTML_RE.sub(lambda m: _MD_HTML[m.group(0)[0]], text)
    return _MD_PUNCT.sub(r"\\\1", text)


_MD_CODE_SAFE = re.compile(r"[A-Za-z0-9._:/@+=-]+")


def md_code(s: object) -> str:
    """`s` as an inline code span when it is a plain token (a digest, a policy name), else as
    `md_cell` text: inside a code span backslash escapes do not work, so nothing else goes in."""
    text = str(s)
    return f"`{text}`" if _MD_CODE_SAFE.fullmatch(text) else md_cell(text)


def md_text(s: object) -> str:
    """`s` as a line of Markdown prose: `md_cell`, and no list/heading marker at the start."""
    text = md_cell(s)
    return _MD_BLOCK_START.sub(_md_unblock, text)


def _md_unblock(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


__all__ = [
    "escape_markup",
    "md_cell",
    "md_code",
    "md_text",
    "safe_markup",
    "safe_text",
    "visible",
    "visible_lines",
]
