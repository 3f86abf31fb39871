"""Baseline screen (``b``): the learning curve, the state, and every entry of the stored baseline.

Shows the baseline the TUI detects against (``--baseline PATH``, else
sensor/baseline's default file; while replaying with a baseline, the running
detector's copy): learning state, assets, pairs, entries, intervals, the
findings waiting to be accepted, and the learning curve (new entries per
interval, as a sparkline and its first/last values).  Below, the entries
(``asset IP``, ``pair CLIENT>SERVER PROTO/PORT FIELD VALUE`` as ``otwatch
baseline export``/``diff`` write them), filterable with ``/``.
Accepting a departure (``L`` on a ``baseline.*`` alert) learns its entry
through sensor/baseline/accept.py.  Esc clears the filter, then (like ``b``) closes the screen.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from .listpane import ListPane
from .overview import ascii_spark
from .safe import clean, safe_text

CURVE_WIDTH = 60
"""Columns of the learning-curve sparkline text."""


class BaselineEntries(ListPane):
    TITLE = "Entries"
    COLUMNS = [("entry", "Entry", 150)]
    DEFAULT_SORT = 0
    BINDINGS = []

    def __init__(self, model, entries: list[str], **kw):
        super().__init__(model, **kw)
        self.entries = entries

    def all_keys(self):
        return list(self.entries)

    def record(self, key):
        kind = key.split(" ", 1)[0]
        return {"entry": key, "kind": kind}, (safe_text(key, 400),)

    def on_mount(self) -> None:
        self.call_after_refresh(self.refresh_data, None, True)


def bucketed(curve: list, width: int = CURVE_WIDTH) -> list:
    """The whole curve in at most *width* points (sums of consecutive intervals)."""
    step = max(1, -(-len(curve) // width))
    return [sum(curve[i:i + step]) for i in range(0, len(curve), step)]


def header_text(model, b) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Baseline ", style="bold")
    out.append(clean(model.baseline_file(), 120))
    if b is None:
        out.append("\n" + clean(getattr(model, "baseline_error", "") or "no baseline", 300), style="bold red")
        return out
    L = b.learning
    out.append(f": {L.status}\n", style="bold")
    out.append(f"{len(b.assets):,} assets, {len(b.pairs):,} pairs, {b.entry_count():,} entries over "
               f"{L.intervals:,} intervals of {b.interval:g} s; {L.quiet} quiet intervals at the end; "
               f"{len(b.pending):,} findings that can be accepted\n")
    out.append("new entries per interval: ")
    if L.curve:
        out.append(ascii_spark(bucketed(L.curve), CURVE_WIDTH), style="bold")
        out.append(f"  (first {L.curve[0]:,}, last {L.curve[-1]:,}, peak {max(L.curve):,})")
    else:
        out.append("-", style="dim")
    return out


class BaselineScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("b", "app.pop_screen", "Close")]

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.b = model.baseline()

    def _entries(self) -> list[str]:
        if self.b is None:
            return []
        from ..baseline.diff import entries

        return sorted(entries(self.b))

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.model, self.b), markup=False, id="baseline-head")
        curve = list(self.b.learning.curve) if self.b is not None else []
        yield Sparkline([float(x) for x in bucketed(curve, 200)] or [0.0], id="baseline-curve")
        yield BaselineEntries(self.model, self._entries(), id="baseline-entries")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BaselineEntries).focus_table()

    def action_back(self) -> None:
        """Escape: clear the entries' filter first, then close."""
        if not self.query_one(BaselineEntries).clear_filter():
            self.app.pop_screen()


__all__ = ["BaselineScreen", "BaselineEntries", "header_text"]
