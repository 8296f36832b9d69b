"""One entry: statement as tree and JSON, signature, chain and Merkle status, reproductions."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from ledger import merkle
from ledger.canonical import digest_bytes
from ledger.chain import Entry
from ledger.checkpoint import CheckpointError, parse_note
from ledger.errors import EvledgerError
from ledger.evidence import fmt_metric, metrics_of, runner_of
from ledger.textsafe import safe_markup, safe_text
from ledger.verify import stored_checkpoints
from tui.widgets.json_view import JsonTree, JsonView

if TYPE_CHECKING:
    from tui.app import EvledgerApp


#: entry-derived text inside Textual markup
markup = partial(safe_markup, dialect="textual")

#: the ratio and the distortion every compression claim is judged on
RATIO_METRICS = ("ratio_fp16_effective", "ratio_fp16", "ratio")
#: the functional (what-the-model-does) metric, first one present
FUNCTIONAL_METRICS = (
    "out_cos",
    "layer_out_cos_min",
    "ppl_ratio",
    "ppl_after_gptq",
    "ppl_after_rtn",
    "ppl_after",
    "ratio_at_cos_099",
    "peak_rss_mb",
    "entropy_gain_ok",
)
SECTIONS_HINT = (
    "[dim]↓ more: Signatures · Chain · [/dim][b]D[/b][dim] Determinism · [/dim][b]r[/b][dim] "
    "Reproductions · Subjects[/dim]"
)


def headline_metrics(metrics: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(headline keys: ratio, cos_min, the functional metric; the other keys, sorted)."""
    head = [next((k for k in RATIO_METRICS if k in metrics), None)]
    head.append("cos_min" if "cos_min" in metrics else None)
    head.append(next((k for k in FUNCTIONAL_METRICS if k in metrics), None))
    shown = [k for k in head if k is not None]
    rest = sorted(k for k in metrics if k not in shown and k != "determinism_delta")
    return shown, rest


def headline_text(keys: list[str], metrics: dict[str, Any], determinism: Any) -> Text:
    """`ratio_fp16_effective 3.9x  cos_min 0.995  out_cos 0.998  determinism Δ 0 (2 runs, …)`."""
    out = Text()
    for key in keys:
        value = fmt_metric(metrics[key])
        suffix = "x" if key.startswith("ratio") and not isinstance(metrics[key], bool) else ""
        out.append_text(safe_text(key, style="bold"))
        out.append(" ")
        out.append_text(safe_text(f"{value}{suffix}", style="bold cyan"))
        out.append("   ")
    if isinstance(determinism, dict):
        equal = determinism.get("digests_equal")
        out.append("determinism ", style="bold")
        out.append_text(
            safe_text(
                f"Δ {fmt_metric(determinism.get('delta'))} "
                f"({determinism.get('runs')} runs, digests {'equal' if equal else 'differ'})",
                style="bold green" if equal and not determinism.get("delta") else "bold yellow",
            )
        )
    elif "determinism_delta" in metrics:
        out.append("determinism ", style="bold")
        out.append_text(safe_text(f"Δ {fmt_metric(metrics['determinism_delta'])}"))
    if not out:
        out.append("(no metrics in this entry)", style="dim")
    return out


@dataclass
class EntryLoaded(Message):
    """The entry and its inclusion status were read (by a worker)."""

    entry: Entry | None
    inclusion: str
    error: str = ""
    checkpoint: dict[str, Any] = field(default_factory=dict)


def inclusion_status(
    digests: list[str], seq: int, root_hex: str | None, checkpoints: list[tuple[int, str]]
) -> str:
    """Merkle inclusion of entry `seq`: against the verified root and the newest checkpoint."""
    leaves = [merkle.leaf_hash(digest_bytes(d)) for d in digests]
    lines = []
    if root_hex:
        try:
            proof = merkle.inclusion_proof(leaves, seq)
            merkle.verify_inclusion(leaves[seq], seq, len(leaves), proof, bytes.fromhex(root_hex))
            lines.append(
                f"✓ included in the verified tree of {len(leaves)} entries "
                f"(proof of {len(proof)} hashes)"
            )
        except (merkle.ProofError, IndexError, ValueError) as e:
            lines.append(f"✗ not included in the verified tree: {e}")
    else:
        lines.append("· tree root not known until verification finishes")
    covering = [(size, text) for size, text in checkpoints if size > seq]
    if not covering:
        lines.append("· no stored checkpoint covers this entry yet (evledger checkpoint)")
    else:
        size, text = covering[0]
        try:
            cp, _ = parse_note(text)
            proof = merkle.inclusion_proof(leaves[:size], seq)
            merkle.verify_inclusion(leaves[seq], seq, size, proof, cp.root)
            lines.append(f"✓ included in checkpoint {size} ({cp.origin})")
        except (merkle.ProofError, CheckpointError, IndexError, ValueError) as e:
            lines.append(f"✗ not provably in checkpoint {size}: {e}")
    return "\n".join(lines)


class EntryScreen(Screen[None]):
    """Everything about one entry."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", priority=True, id="back"),
        Binding("o", "show_tab('overview')", "Overview", show=False, id="tab-overview"),
        Binding("t", "show_tab('tree')", "Tree", show=False, id="tab-tree"),
        Binding("J", "show_tab('json')", "JSON", show=False, id="tab-json"),
        Binding("D", "jump('entry-determinism')", "Determinism", id="jump-determinism"),
        Binding("r", "jump('entry-reproductions')", "Reproductions", id="jump-reproductions"),
        Binding("m", "mark_entry", "Mark", id="mark-entry"),
    ]

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq
        self.entry: Entry | None = None

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Title, three tabs, footer."""
        yield Static(f"Entry {self.seq}", id="entry-title")
        with TabbedContent(id="entry-tabs", initial="overview"):
            with TabPane("o Overview", id="overview"), VerticalScroll(id="overview-scroll"):
                yield Static("loading…", id="entry-headline")
                yield Static(SECTIONS_HINT, id="entry-sections-hint")
                yield Static("", id="entry-summary")
                yield Static("", id="entry-signature")
                yield Static("", id="entry-chain")
                yield Static("", id="entry-determinism")
                yield Static("Reproductions of this entry", classes="section-title")
                yield DataTable(id="entry-reproductions", cursor_type="row")
                yield Static("Subjects", classes="section-title")
                yield DataTable(id="entry-subjects", cursor_type="row")
            with TabPane("t Tree", id="tree"):
                yield JsonTree(id="entry-tree")
            with TabPane("J JSON", id="json"):
                yield JsonView(id="entry-json")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Read the entry in a worker; ↓ / PgDn scroll the overview at once."""
        self.query_one("#overview-scroll").focus()
        self.load_entry()

    @work(thread=True, exclusive=True, group="entry", exit_on_error=False)
    def load_entry(self) -> None:
        """Read the entry and check its Merkle inclusion (blocking git and hashing)."""
        app = self.evapp
        try:
            entry = app.read_entry(self.seq)
        except (EvledgerError, ValueError) as e:
            self.post_message(EntryLoaded(None, "", error=str(e)))
            return
        report = app.report
        if report is not None and report.digests:
            digests, root = report.digests, report.root
        else:
            digests = app.index.cols["digest"] if app.index is not None else []
            root = None
        try:
            checkpoints = stored_checkpoints(app.ledger.store, "HEAD")
        except EvledgerError:
            checkpoints = []
        status = inclusion_status(list(digests), self.seq, root, checkpoints) if digests else ""
        self.post_message(EntryLoaded(entry, status))

    @on(EntryLoaded)
    def _loaded(self, message: EntryLoaded) -> None:
        if message.entry is None:
            self.query_one("#entry-headline", Static).update(safe_text(f"✗ {message.error}"))
            return
        entry = self.entry = message.entry
        try:
            statement = entry.document
        except (ValueError, KeyError, TypeError) as e:
            statement = {"error": f"payload unreadable: {e}"}
        runner = (_readable(entry) and runner_of(entry)) or ""
        self.query_one("#entry-title", Static).update(
            safe_text(f"Entry {entry.seq} · {entry.kind} · {runner} · {entry.digest[:23]}…")
        )
        self.query_one(JsonTree).load(statement)
        self.query_one(JsonView).load(statement)
        self._fill_overview(entry, message.inclusion)

    def _problems(self) -> list[str]:
        report = self.evapp.report
        if report is None:
            return []
        return [f"{p.code}: {p.message}" for p in self.evapp.problems.get(self.seq, [])]

    def _fill_overview(self, entry: Entry, inclusion: str) -> None:
        app = self.evapp
        report = app.report
        pred = entry.document.get("predicate", {}) if _readable(entry) else {}
        summary = [
            f"[b]seq[/b] {entry.seq}   [b]kind[/b] {markup(entry.kind)}   "
            f"[b]time[/b] {markup(entry.time)}",
            f"[b]predicate[/b] {markup(entry.predicate_type)}",
            f"[b]digest[/b] {markup(entry.digest)}",
            f"[b]prev[/b]   {markup(entry.prev or '(none: genesis)')}",
        ]
        metrics = metrics_of(entry)
        headline, rest = headline_metrics(metrics)
        if rest:
            others = ", ".join(f"{k}={fmt_metric(metrics[k])}" for k in rest)
            summary.append(f"[b]other metrics[/b] {markup(others)}")
        problems = self._problems()
        lines = [headline_text(headline, metrics, pred.get("determinism"))]
        if report is None:
            lines.append(Text("· not verified yet", style="dim"))
        elif problems:
            lines.extend(safe_text(f"✗ {p}", style="red") for p in problems)
        else:
            lines.append(Text("✓ signature, chain, schema and trust verified", style="green"))
        self.set_class(bool(problems), "-failed")
        self.query_one("#entry-headline", Static).update(Text("\n").join(lines))
        self.query_one("#entry-summary", Static).update("\n".join(summary))

        keys = {k["keyid"]: k for k in (report.trusted_keys if report else [])}
        sig_lines = ["[b]Signatures[/b]"]
        for keyid in entry.signer_keyids:
            key = keys.get(keyid)
            if key is None:
                who = "unknown key (not trusted by this ledger)" if report else "…"
            else:
                who = markup(f"{key['name']}, trusted since seq {key['added_seq']}")
                if key.get("revoked_seq") is not None:
                    revoked = markup(f"revoked at seq {key['revoked_seq']}")
                    who += f", [red]{revoked}[/red] ({markup(key.get('reason'))})"
                else:
                    who += ", not revoked"
            verified = report is not None and report.signers.get(entry.seq) == keyid
            mark = "✓" if verified else ("✗" if report else "·")
            sig_lines.append(f"{mark} keyid {markup(keyid[:32])}… {who}")
        self.query_one("#entry-signature", Static).update("\n".join(sig_lines))

        chain = ["[b]Chain and Merkle[/b]"]
        chain_problems = [
            p
            for p in problems
            if p.split(":")[0] in ("chain-break", "out-of-order", "binding-mismatch")
        ]
        if report is None:
            chain.append("· chain not checked yet")
        elif chain_problems:
            chain.extend(f"✗ {markup(p)}" for p in chain_problems)
        else:
            chain.append("✓ prev matches the digest of the entry before")
        if inclusion:
            chain.extend(markup(line) for line in inclusion.split("\n"))
        self.query_one("#entry-chain", Static).update("\n".join(chain))

        det = pred.get("determinism")
        det_lines = ["[b]Determinism[/b]"]
        if isinstance(det, dict):
            det_lines.append(
                markup(
                    f"runs {det.get('runs')} · max Δ {det.get('delta')} · "
                    f"digests equal {det.get('digests_equal')}"
                )
            )
            deltas = det.get("deltas")
            if isinstance(deltas, dict):
                nonzero = {k: v for k, v in deltas.items() if v}
                listed = ", ".join(f"{k}={v}" for k, v in nonzero.items())
                det_lines.append(
                    "all per-metric deltas are 0" if not nonzero else f"non-zero: {markup(listed)}"
                )
        else:
            det_lines.append("[dim](no determinism block in this entry)[/dim]")
        self.query_one("#entry-determinism", Static).update("\n".join(det_lines))

        repro: DataTable[str] = self.query_one("#entry-reproductions", DataTable)
        repro.clear(columns=True)
        repro.add_columns("seq", "runner", "verdict", "status", "digest")
        index = app.index
        if index is not None:
            for pos in index.reproductions_of(entry.digest):
                row = index.row(pos)
                repro.add_row(
                    str(row.seq),
                    safe_text(row.runner),
                    safe_text(row.verdict or "?"),
                    app.status.get(row.seq, "····"),
                    safe_text(row.digest[:23]),
                    key=str(row.seq),
                )
        if repro.row_count == 0:
            repro.add_row("", "(none)", "", "", "")

        subjects: DataTable[str] = self.query_one("#entry-subjects", DataTable)
        subjects.clear(columns=True)
        subjects.add_columns("name", "sha256")
        for s in entry.subjects if _readable(entry) else ():
            subjects.add_row(safe_text(s.name or ""), safe_text(s.sha256 or ""))

    @on(DataTable.RowSelected, "#entry-reproductions")
    def _open_reproduction(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key and key.isdigit():
            self.evapp.jump_to_entry(int(key))

    def action_jump(self, widget_id: str) -> None:
        """Scroll the overview to a section (and focus its table, if it has one)."""
        self.query_one(TabbedContent).active = "overview"
        target = self.query_one(f"#{widget_id}")
        self.query_one("#overview-scroll", VerticalScroll).scroll_to_widget(
            target, animate=False, top=True
        )
        if target.can_focus:
            target.focus()

    def action_show_tab(self, tab: str) -> None:
        """Switch tab."""
        self.query_one(TabbedContent).active = tab

    def action_mark_entry(self) -> None:
        """Mark this entry for a diff (from the list)."""
        from tui.screens.browse import BrowseScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, BrowseScreen):
                entries = screen.entries
                if entries.go_to_seq(self.seq):
                    entries.action_mark_entry()
                    self.notify(f"marked: {', '.join(map(str, entries.marked))}")

    def action_back(self) -> None:
        """Back to where we came from."""
        self.app.pop_screen()


def _readable(entry: Entry) -> bool:
    """True if the entry's payload decodes (an unreadable one is still shown, as unreadable)."""
    try:
        return isinstance(entry.document, dict)
    except (ValueError, KeyError, TypeError):
        return False
