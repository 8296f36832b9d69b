"""One entry: statement as tree and JSON, signature, chain and Merkle status, reproductions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape
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
from ledger.evidence import runner_of
from ledger.verify import stored_checkpoints
from tui.widgets.json_view import JsonTree, JsonView

if TYPE_CHECKING:
    from tui.app import EvledgerApp


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
        Binding("o", "show_tab('overview')", "Overview", id="tab-overview"),
        Binding("t", "show_tab('tree')", "Tree", id="tab-tree"),
        Binding("J", "show_tab('json')", "JSON", id="tab-json"),
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
            with TabPane("Overview", id="overview"), VerticalScroll(id="overview-scroll"):
                yield Static("loading…", id="entry-summary")
                yield Static("", id="entry-signature")
                yield Static("", id="entry-chain")
                yield Static("", id="entry-determinism")
                yield Static("Reproductions of this entry", classes="section-title")
                yield DataTable(id="entry-reproductions", cursor_type="row")
                yield Static("Subjects", classes="section-title")
                yield DataTable(id="entry-subjects", cursor_type="row")
            with TabPane("Tree", id="tree"):
                yield JsonTree(id="entry-tree")
            with TabPane("JSON", id="json"):
                yield JsonView(id="entry-json")
        yield Footer()

    def on_mount(self) -> None:
        """Read the entry in a worker."""
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
            self.query_one("#entry-summary", Static).update(f"✗ {escape(message.error)}")
            return
        entry = self.entry = message.entry
        try:
            statement = entry.document
        except (ValueError, KeyError, TypeError) as e:
            statement = {"error": f"payload unreadable: {e}"}
        runner = (_readable(entry) and runner_of(entry)) or ""
        self.query_one("#entry-title", Static).update(
            f"Entry {entry.seq} · {entry.kind} · {escape(runner)} · {entry.digest[:23]}…"
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
            f"[b]seq[/b] {entry.seq}   [b]kind[/b] {entry.kind}   [b]time[/b] {escape(entry.time)}",
            f"[b]predicate[/b] {escape(entry.predicate_type)}",
            f"[b]digest[/b] {entry.digest}",
            f"[b]prev[/b]   {entry.prev or '(none: genesis)'}",
        ]
        metrics = pred.get("metrics")
        if isinstance(metrics, dict) and metrics:
            shown = ", ".join(f"{k}={v}" for k, v in list(metrics.items())[:8])
            summary.append(f"[b]metrics[/b] {escape(shown)}")
        problems = self._problems()
        if report is None:
            summary.append("[dim]· not verified yet[/dim]")
        elif problems:
            summary.extend(f"[red]✗ {escape(p)}[/red]" for p in problems)
        else:
            summary.append("[green]✓ no problems found by verification[/green]")
        self.set_class(bool(problems), "-failed")
        self.query_one("#entry-summary", Static).update("\n".join(summary))

        keys = {k["keyid"]: k for k in (report.trusted_keys if report else [])}
        sig_lines = ["[b]Signatures[/b]"]
        for keyid in entry.signer_keyids:
            key = keys.get(keyid)
            if key is None:
                who = "unknown key (not trusted by this ledger)" if report else "…"
            else:
                who = f"{key['name']}, trusted since seq {key['added_seq']}"
                if key.get("revoked_seq") is not None:
                    who += f", [red]revoked at seq {key['revoked_seq']}[/red] ({key.get('reason')})"
                else:
                    who += ", not revoked"
            verified = report is not None and report.signers.get(entry.seq) == keyid
            mark = "✓" if verified else ("✗" if report else "·")
            sig_lines.append(f"{mark} keyid {keyid[:32]}… {escape(who)}")
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
            chain.extend(f"✗ {escape(p)}" for p in chain_problems)
        else:
            chain.append("✓ prev matches the digest of the entry before")
        if inclusion:
            chain.append(escape(inclusion))
        self.query_one("#entry-chain", Static).update("\n".join(chain))

        det = pred.get("determinism")
        det_lines = ["[b]Determinism[/b]"]
        if isinstance(det, dict):
            det_lines.append(
                f"runs {det.get('runs')} · max Δ {det.get('delta')} · "
                f"digests equal {det.get('digests_equal')}"
            )
            deltas = det.get("deltas")
            if isinstance(deltas, dict):
                nonzero = {k: v for k, v in deltas.items() if v}
                listed = ", ".join(f"{k}={v}" for k, v in nonzero.items())
                det_lines.append(
                    "all per-metric deltas are 0" if not nonzero else f"non-zero: {escape(listed)}"
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
                    row.runner,
                    row.verdict or "?",
                    app.status.get(row.seq, "····"),
                    row.digest[:23],
                    key=str(row.seq),
                )
        if repro.row_count == 0:
            repro.add_row("", "(none)", "", "", "")

        subjects: DataTable[str] = self.query_one("#entry-subjects", DataTable)
        subjects.clear(columns=True)
        subjects.add_columns("name", "sha256")
        for s in entry.subjects if _readable(entry) else ():
            subjects.add_row(str(s.name or ""), str(s.sha256 or ""))

    @on(DataTable.RowSelected, "#entry-reproductions")
    def _open_reproduction(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key and key.isdigit():
            self.evapp.jump_to_entry(int(key))

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
