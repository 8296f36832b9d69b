"""Hostile strings in signed entries are inert in every output: CLI text (piped and on a
terminal), `--md`, `--json` (exact round trip).

Each hostile string is placed in a subject name, a metric name, a param name and value and a
runner name (one entry appended with the real API, signed by a real key), and in the signed
`time` of a second real entry; a third, ordinary entry gives `diff` something to compare.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from evidence_factory import add, statement
from invoke import run
from markdown_it import MarkdownIt

from evledger.cli import output
from ledger.api import Ledger
from ledger.chain import build_entry
from ledger.keys import load_key
from ledger.store import entry_path
from ledger.textsafe import visible

HOSTILE = {
    "markup": "[bold green]✓ VERIFIED[/]",
    "clear-screen": "\x1b[2J",
    "osc-title": "\x1b]0;pwned\x07",
    "bidi-override": "\u202e",
    "row-injection": "x\n| fake | row |",
    "html": "<script>",
    "image": "![x](http://a)",
}

#: (name, arguments after --ledger, which hostile places the output must show, as a set)
TEXT = "text"
MD = "md"
JSON = "json"
OUTPUTS: dict[str, tuple[str, list[str]]] = {
    "log": (TEXT, ["log"]),
    "log --json": (JSON, ["log", "--json"]),
    "show 1": (TEXT, ["show", "1"]),
    "show 2": (TEXT, ["show", "2"]),
    "show --json": (JSON, ["show", "1", "--json"]),
    "diff": (TEXT, ["diff", "1", "3", "--all"]),
    "diff --md": (MD, ["diff", "1", "3", "--all", "--md"]),
    "diff --json": (JSON, ["diff", "1", "3", "--all", "--json"]),
    "gate": (TEXT, ["gate"]),
    "gate --md": (MD, ["gate", "--md"]),
    "gate --json": (JSON, ["gate", "--json"]),
    "audit": (TEXT, ["audit"]),
    "audit --md": (MD, ["audit", "--md"]),
    "audit --json": (JSON, ["audit", "--json"]),
    "report": (MD, ["report"]),
    "report --json": (JSON, ["report", "--json"]),
    "verify": (TEXT, ["verify"]),
    "verify --json": (JSON, ["verify", "--json"]),
    "keys list": (TEXT, ["keys", "list"]),
}
#: outputs that must show the hostile string (escaped for their syntax), and where it sits
SHOWN = {
    "log": "runner and time",
    "log --json": "runner and time",
    "show 1": "subject, metric, param, runner",
    "show --json": "subject, metric, param, runner",
    "diff": "subject, metric, param, runner",
    "diff --md": "subject, metric, param, runner",
    "diff --json": "subject, metric, param, runner",
    "audit": "runner",
    "audit --md": "runner",
    "audit --json": "runner",
}
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
SGR = re.compile(r"\x1b\[[0-9;]*m")


def hostile_ledger(ledger: Ledger, text: str) -> Ledger:
    """seq 1: `text` as subject, metric, param name/value and runner; seq 2: `text` as the
    signed time (verify excludes it: not an RFC 3339 date-time); seq 3: an ordinary static
    entry."""
    add(
        ledger,
        statement(
            text,
            {text: 0.5, "cos_min": 0.99, "ratio_fp16_effective": 4.0},
            params={text: text, "bits": 4},
            subject=(text, "ab" * 32),
        ),
    )
    key = load_key("alice")
    with ledger.store.lock():  # the time field is set by the ledger: sign one by hand
        parent = ledger.store.resolve()
        seq, prev = ledger.tip()
        entry = build_entry(
            statement("static", {"cos_min": 0.9}),
            kind="evidence",
            seq=seq + 1,
            prev=prev,
            keys=[key],
            time=text,
        )
        ledger.store.commit_files({entry_path(entry.seq): entry.raw}, "hostile time", parent)
    add(ledger, statement("static", {"cos_min": 0.95, "ratio_fp16_effective": 3.0}))
    return ledger


def live_characters(text: str) -> list[str]:
    """Characters a terminal would act on or hide (newline excepted)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in HIDDEN_CATEGORIES]


def strings_in(doc: Any) -> set[str]:
    """Every string (value or key) in a JSON document."""
    found: set[str] = set()
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            found.update(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def check_markdown(md: str, text: str) -> None:
    """Tables keep their shape, no HTML, no links or images, no live characters."""
    assert not live_characters(md), [hex(ord(c)) for c in live_characters(md)]
    parser = MarkdownIt("commonmark").enable("table")
    html = parser.render(md)
    for forbidden in ("<script", "<img", "<a href"):
        assert forbidden not in html, html
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        header = len(re.findall(r"<th[ >]", table))
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
            assert len(re.findall(r"<td[ >]", row)) == header, row
        assert "<td>fake</td>" not in table and "<td>row</td>" not in table
    if text == HOSTILE["row-injection"]:
        assert not any(line.startswith("| fake") for line in md.splitlines())


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """One real ledger per hostile string: {name: (ledger root, EVLEDGER_HOME)}."""
    from ledger.api import init_ledger

    mp = pytest.MonkeyPatch()
    out = {}
    try:
        for name, text in HOSTILE.items():
            base = tmp_path_factory.mktemp(f"hostile-{name}")
            mp.setenv("EVLEDGER_HOME", str(base / "home"))
            led, _ = init_ledger(base / "ledger", "alice")
            hostile_ledger(led, text)
            out[name] = (led.root, base / "home")
    finally:
        mp.undo()
    return out


#: every output piped; human ones also on a terminal (--json is the same document there)
CASES = [(c, False) for c in OUTPUTS] + [
    (c, True) for c, (kind, _) in OUTPUTS.items() if kind != JSON
]


@pytest.mark.parametrize(
    ("command", "tty"), CASES, ids=[f"{c}-{'terminal' if t else 'piped'}" for c, t in CASES]
)
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_hostile_strings_are_inert_in_every_output(
    ledgers: dict[str, tuple[Path, Path]],
    monkeypatch: pytest.MonkeyPatch,
    hostile: str,
    command: str,
    tty: bool,
) -> None:
    kind, args = OUTPUTS[command]
    text = HOSTILE[hostile]
    root, home = ledgers[hostile]
    monkeypatch.setenv("EVLEDGER_HOME", str(home))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    if tty:  # the terminal layout: Rich consoles with colour (wide: no folding mid-string)
        monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "400")
    code, out, err = run(["--ledger", root, *args])
    if command == "show 2":  # the hostile signed time does not verify: refused, one inert line
        assert code == 2 and "seq 2" in err and "(schema)" in err and not out, (code, err)
    else:
        assert code in (0, 1), (code, err)
    assert not live_characters(err), err
    if kind == JSON:
        doc = json.loads(out)
        assert out.count("\n") == 1  # exactly one document
        if command in SHOWN:
            assert text in strings_in(doc)  # the exact string, not an escaped copy
        return
    plain = SGR.sub("", out) if tty else out
    assert not live_characters(plain), [hex(ord(c)) for c in live_characters(plain)]
    assert "\x1b" not in plain
    if kind == MD:
        check_markdown(out, text)
    if command not in SHOWN:
        return
    if kind == TEXT:
        shown = visible(json.dumps(text, ensure_ascii=False)[1:-1]) if "show" in command else None
        expected = [visible(text)] + ([shown] if shown else [])
        assert any(e in plain for e in expected), plain
        if text == HOSTILE["markup"]:  # printed literally, not as green bold markup
            assert "[bold green]" in plain and "[/]" in plain
        if text == HOSTILE["row-injection"]:
            assert not any(line.startswith("| fake") for line in plain.splitlines())


# --------------------------------------------------------------------------- the TUI leg
#: keys from the ledger screen to each screen (seq 1 holds the hostile names, seq 2 the time);
#: diff last, as its marks stay
TUI_SCREENS = {
    "browse": (),
    "entry": ("j", "enter"),
    "entry-time": ("j", "j", "enter"),
    "gates": ("p",),
    "audit": ("a",),
    "verify": ("v",),
    "diff": ("j", "space", "j", "j", "space", "d"),
}
#: screens that must show the hostile string (so the test sees it rendered, not dropped)
TUI_SHOWN = {"browse", "entry", "entry-time"}


async def _settle(app: Any, pilot: Any) -> None:
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


def check_tui_screen(screen: str, strips: list[Any], text: str) -> None:
    """No live character on the rendered screen; markup in entry text shows as text."""
    segments = [segment for strip in strips for segment in strip]
    rendered = "\n".join(strip.text for strip in strips)
    live = live_characters(rendered)
    assert not live, (screen, [hex(ord(c)) for c in live])
    if screen not in TUI_SHOWN:
        return
    squeezed = re.sub(r"\s", "", rendered)
    shown = re.sub(r"\s", "", visible(text))
    assert shown[:12] in squeezed, (screen, rendered)  # shown as text (a cell may cut the tail)
    if text == HOSTILE["markup"]:  # parsed markup would drop the brackets and style the rest
        lines = [strip.text for strip in strips if "VERIFIED" in strip.text]
        assert lines and all("[bold green]✓ VERIFIED" in line for line in lines), lines
        green = [s for s in segments if "VERIFIED" in s.text and "[bold green]" not in s.text]
        assert not green, green


@pytest.mark.parametrize("hostile", list(HOSTILE))
async def test_hostile_strings_are_inert_in_the_tui(
    ledgers: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    """The real app via Pilot: every screen rendered, its strips checked, back to the list."""
    from ledger.api import open_ledger
    from tui.app import EvledgerApp
    from tui.screens.browse import BrowseScreen

    root, home = ledgers[hostile]
    monkeypatch.setenv("EVLEDGER_HOME", str(home))
    app = EvledgerApp(open_ledger(root), use_cache=False)
    app.animation_level = "none"
    async with app.run_test(size=(200, 50)) as pilot:
        await _settle(app, pilot)
        for screen, keys in TUI_SCREENS.items():
            await pilot.press(*keys)
            await _settle(app, pilot)
            check_tui_screen(screen, app.screen._compositor.render_strips(), HOSTILE[hostile])
            for _ in range(4):
                if isinstance(app.screen, BrowseScreen):
                    break
                await pilot.press("escape")
                await _settle(app, pilot)
            assert isinstance(app.screen, BrowseScreen), (screen, app.screen_stack)
            await pilot.press("g")  # back to the first row
