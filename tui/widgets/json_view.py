"""Read-only views of a JSON document: highlighted text, and a collapsible tree."""

from __future__ import annotations

import json
from typing import Any

from rich.highlighter import ReprHighlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.highlight import highlight
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from ledger.textsafe import safe_text, visible, visible_lines

MAX_CHARS = 400_000


def pretty(doc: Any) -> str:
    """Indented JSON text (sorted keys), cut at MAX_CHARS for very large predicates."""
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + "\n… (truncated)"
    return text


class JsonView(VerticalScroll):
    """Syntax-highlighted, pretty-printed JSON in a scroll area."""

    def __init__(self, doc: Any = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._doc = doc

    def compose(self) -> ComposeResult:
        """One Static holding the highlighted text."""
        yield Static(self._content(), classes="json-text")

    def _content(self) -> Any:
        if self._doc is None:
            return ""
        # JSON escapes C0 controls itself; C1 (e.g. CSI \x9b) and bidi characters it keeps
        return highlight(visible_lines(pretty(self._doc)), language="json")

    def load(self, doc: Any) -> None:
        """Show another document."""
        self._doc = doc
        self.query_one(".json-text", Static).update(self._content())


class JsonTree(Tree[Any]):
    """The document as a collapsible tree (top levels expanded)."""

    def __init__(self, label: str = "statement", *, id: str | None = None) -> None:
        super().__init__(label, id=id)

    def load(self, doc: Any, expand_depth: int = 2) -> None:
        """Replace the tree with `doc`; expand the first levels."""
        self.clear()
        self._add(self.root, "", doc, ReprHighlighter())
        self.root.expand()
        stack = [(self.root, 0)]
        while stack:
            node, depth = stack.pop()
            if depth < expand_depth:
                node.expand()
                stack.extend((child, depth + 1) for child in node.children)

    def _add(self, node: TreeNode[Any], name: str, data: Any, highlighter: ReprHighlighter) -> None:
        """Like Tree.add_json, but keys are shown inert (Tree.add_json parses them as markup)."""
        if isinstance(data, dict):
            node.set_label(Text.assemble("{} ", safe_text(name)))
            for key, value in data.items():
                self._add(node.add(""), str(key), value, highlighter)
        elif isinstance(data, list):
            node.set_label(Text.assemble("[] ", safe_text(name)))
            for n, value in enumerate(data):
                self._add(node.add(""), str(n), value, highlighter)
        else:
            node.allow_expand = False
            value = highlighter(visible(repr(data)))
            if name:
                node.set_label(Text.assemble(safe_text(name, style="bold"), "=", value))
            else:
                node.set_label(value)
