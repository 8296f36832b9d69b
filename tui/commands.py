"""Command palette providers: jump to any entry by seq, runner, subject or digest."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ledger.textsafe import safe_markup

if TYPE_CHECKING:
    from tui.app import EvledgerApp

MAX_HITS = 20
#: the palette parses prompts and help as Textual markup: entry text goes in escaped
markup = partial(safe_markup, dialect="textual")


class EntryProvider(Provider):
    """Open an entry: searches the prebuilt index (capped), never the ledger itself."""

    @property
    def _app(self) -> EvledgerApp:
        return cast("EvledgerApp", self.app)

    async def discover(self) -> Hits:
        """The newest entries."""
        index = self._app.index
        if index is None:
            return
        for pos in range(len(index) - 1, max(-1, len(index) - 6), -1):
            row = index.row(pos)
            yield DiscoveryHit(
                markup(f"Open entry {row.seq} ({row.runner or row.kind})"),
                partial(self._app.jump_to_entry, row.seq),
                help=markup(row.digest[:23]),
            )

    async def search(self, query: str) -> Hits:
        """Entries whose seq, digest, runner, kind or subject contains the query."""
        index = self._app.index
        if index is None or not query.strip():
            return
        matcher = self.matcher(query)
        for pos in index.search(query)[:MAX_HITS]:
            row = index.row(pos)
            title = markup(f"Open entry {row.seq}: {row.kind} {row.runner} {row.subject}".strip())
            score = matcher.match(title) or 0.5
            yield Hit(
                score,
                matcher.highlight(title),
                partial(self._app.jump_to_entry, row.seq),
                text=title,
                help=markup(row.digest[:23]),
            )
