"""Small widgets and cell formatters shared by the screens.

* ``sev_text(sev)``: a severity as word + glyph + colour (never colour alone,
  ISA-101): ``CRIT ▲``, ``HIGH``, ``MED``, ``LOW``, ``info``; the colours are
  the 16 ANSI names, so a 16-colour console shows them.
* ``KeyTable``: a ``DataTable`` updated by row key (``upsert``), Text cells
  only, that keeps the cursor on the same row key across rebuilds.
* ``Tile``: a focusable Overview tile; Enter (or a click) posts ``Tile.Open``.
* ``FilterBar``: the ``/`` filter line: ``field:value`` terms and free words.
"""
from __future__ import annotations

import datetime as _dt
from functools import lru_cache

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual._two_way_dict import TwoWayDict
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.widgets import DataTable, Input, Static
from textual.widgets._data_table import Row, RowKey

from ..alerts.model import severity_rank
from .safe import safe_text

SEV_LABEL = {"critical": "CRIT ▲", "high": "HIGH", "medium": "MED", "low": "LOW", "info": "info"}
SEV_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def sev_text(sev: str) -> Text:
    return Text(SEV_LABEL.get(sev, sev or "?"), style=SEV_STYLE.get(sev, ""), no_wrap=True, end="")


def num(n, style: str = "") -> Text:
    return Text(f"{n:,}" if isinstance(n, int) else str(n), style=style, justify="right", no_wrap=True, end="")


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%H:%M:%S")


def plain(s: str, style: str = "") -> Text:
    """Our own text (no wire data) as a Text cell."""
    return Text(s, style=style, no_wrap=True, overflow="ellipsis", end="")


CELL_MEMO = 1 << 14
"""Table cells (and their sort keys) kept for reuse: a big list's rows repeat most of their cells (a class,
a zone, a protocol, a port, a broker's label), and a ``Text`` costs microseconds to make (~1 s per 10,000
rows of ten cells).  Bounded (least recently used out): ~16,000 cells, a few MB."""


@lru_cache(maxsize=CELL_MEMO)
def cell(s: str, style: str = "", right: bool = False) -> Text:
    """Our own text (no wire data) as a table cell, shared between the rows that show the same: never mutate
    it (``plain``/``num`` for a Text to append to)."""
    if right:
        return Text(s, style=style, justify="right", no_wrap=True, end="")      # as num()
    return Text(s, style=style, no_wrap=True, overflow="ellipsis", end="")     # as plain()


def num_cell(n, style: str = "") -> Text:
    """A number as a right-aligned (shared) cell."""
    return cell(f"{n:,}" if isinstance(n, int) else str(n), style, True)


@lru_cache(maxsize=CELL_MEMO)
def safe_cell(value: str, limit: int = 256, style: str = "") -> Text:
    """A wire string as a (shared) table cell: ``safe_text``, made once per value, limit and style."""
    return safe_text(value, limit, style)


def sort_value(v):
    """A sortable key for a cell's raw value (numbers numerically, IPs by octets, text case-folded)."""
    if isinstance(v, (int, float)):
        return (0, v, "")
    s = str(v or "")
    parts = s.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return (1, tuple(int(p) for p in parts), "")
    return (2, 0, s.casefold())


class KeyTable(DataTable):
    """Rows keyed by id; ``upsert`` adds or updates cells in place; selection kept by key.

    Built for 10,000 rows and more: every column has a fixed width and every row
    one line, so nothing is measured (Textual's ``DataTable`` measures every cell
    of every new row, and sums row heights to find a line); ``load`` replaces all
    rows and ``order`` re-orders them in one step each (no per-row ``add_row``,
    no per-row sort key), so a filter or a sort over 10,000 rows is one pass.
    Rendering stays virtual: only the lines on screen are drawn.
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, columns: list[tuple[str, str, int]], **kw):
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.spec = columns
        self.cells: dict[str, tuple] = {}
        self._made: dict = {}      # row key -> (cells, RowKey, cell dict, Row) of the last load

    def on_mount(self) -> None:
        for key, label, width in self.spec:
            self.add_column(label, key=key, width=width)

    # -- one line per row, fixed widths: no measuring, no summing --------------------------
    def _update_dimensions(self, new_rows) -> None:
        width = sum(c.get_render_width(self) for c in self.columns.values()) + self._row_label_column_width
        self.virtual_size = Size(width, len(self.rows) + (self.header_height if self.show_header else 0))

    @property
    def _total_row_height(self) -> int:
        return len(self.rows)

    def _get_offsets(self, y: int):
        if self.show_header:
            if y < self.header_height:
                return self._header_row_key, y
            y -= self.header_height
        if y >= len(self.rows):
            raise LookupError(f"Y coord {y!r} is greater than total height")
        return self._row_locations.get_key(y), 0

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(c.get_render_width(self) for c in self.columns.values()) + self._row_label_column_width
        return Region(0, row_index + (self.header_height if self.show_header else 0), max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        cols = self.ordered_columns
        x = sum(c.get_render_width(self) for c in cols[:column_index]) + self._row_label_column_width
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(x, y, cols[column_index].get_render_width(self), 1)

    def action_page_down(self) -> None:
        self._page(1)

    def action_page_up(self) -> None:
        self._page(-1)

    def _page(self, step: int) -> None:
        self._set_hover_cursor(False)
        height = max(1, self.scrollable_content_region.height - (self.header_height if self.show_header else 0))
        self.scroll_relative(y=step * height, animate=False, force=True)
        self.move_cursor(row=max(0, min(self.row_count - 1, self.cursor_row + step * (height - 1))), scroll=False)

    # -- rows by key -------------------------------------------------------------------------
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:   # noqa: BLE001 - an empty or shrinking table has no cursor
            return None

    def upsert(self, key: str, cells: tuple) -> bool:
        """Add the row or update its changed cells; True when a row was added."""
        old = self.cells.get(key)
        if old is None:
            self.cells[key] = cells
            self.add_row(*cells, key=key)
            return True
        if old != cells:
            self.cells[key] = cells
            for (ck, _l, _w), a, b in zip(self.spec, old, cells):
                if a != b:
                    self.update_cell(key, ck, b)
        return False

    def drop(self, key: str) -> None:
        if key in self.cells:
            del self.cells[key]
            self.remove_row(key)

    def rebuild(self, rows: list[tuple[str, tuple]]) -> None:
        """Replace every row in one go and put the cursor back on the row it was on."""
        keep = self.selected_key()
        self.load(rows)
        self.restore(keep)

    def load(self, rows: list[tuple[str, tuple]]) -> None:
        """Every row at once, in this order (the cursor goes to the top)."""
        self.clear()
        colkeys = [c.key for c in self.ordered_columns]
        data, meta, where = {}, {}, {}
        made = self._made
        for i, (key, cells) in enumerate(rows):
            m = made.get(key)
            if m is None or m[0] is not cells:       # the row objects of a row already shown are reused
                rk = RowKey(key)
                m = made[key] = (cells, rk, dict(zip(colkeys, cells)), Row(rk, 1, None, False))
            _c, rk, data[rk], meta[rk] = m
            where[rk] = i
        if len(made) > 2 * len(rows) + 1000:
            keep = {k for k, _c in rows}
            self._made = {k: v for k, v in made.items() if k in keep}
        self.cells = dict(rows)
        self._data = data
        self.rows = meta
        self._row_locations = TwoWayDict(where)
        self._update_count += 1
        self._require_update_dimensions = True
        self.cursor_coordinate = Coordinate(0, 0)
        if rows and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self.check_idle()
        self.refresh()

    def order(self, keys: list[str]) -> None:
        """Put the rows in this order (every row key of the table, once)."""
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(keys)})
        self._update_count += 1
        self._clear_caches()
        self.refresh()

    def restore(self, key: str | None) -> None:
        if key is not None and key in self.cells:
            def go():
                try:
                    self.move_cursor(row=self.get_row_index(key))
                except Exception:   # noqa: BLE001 - the row went away meanwhile
                    pass
            self.call_after_refresh(go)


class Tile(Static, can_focus=True):
    """A focusable summary tile; Enter or a click opens the list behind it."""

    BINDINGS = [Binding("enter", "open", "Open", show=True)]

    class Open(Message):
        def __init__(self, target: str, query: str) -> None:
            super().__init__()
            self.target = target
            self.query = query

    def __init__(self, title: str, target: str, query: str = "", **kw):
        super().__init__("", markup=False, **kw)
        self.border_title = title
        self.target = target
        self.query_text = query

    def action_open(self) -> None:
        self.post_message(self.Open(self.target, self.query_text))

    def on_click(self) -> None:
        self.action_open()


class FilterBar(Input):
    """The filter line: Enter keeps it, Escape clears it; ↑/↓ recall earlier filters."""

    BINDINGS = [Binding("up", "history(-1)", "Earlier filter", show=False),
                Binding("down", "history(1)", "Later filter", show=False)]
    HISTORY = 20

    def __init__(self, **kw):
        super().__init__(placeholder="filter: words or field:value  (Enter keep · Esc clear)", **kw)
        self.history: list[str] = []
        self._pos = 0

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-self.HISTORY]
        self._pos = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.value = self.history[self._pos] if self._pos < len(self.history) else ""


def parse_filter(text: str) -> tuple[dict, list]:
    """``"zone:cell2 plc"`` → ({"zone": ["cell2"]}, ["plc"]) (lower-cased)."""
    fields: dict = {}
    words = []
    for term in text.lower().split():
        if ":" in term and not term.startswith(":"):
            k, v = term.split(":", 1)
            if k in ("ip", "mac") or not k.isidentifier():
                words.append(term)      # an IPv6 address or a MAC is a word, not a field
            else:
                fields.setdefault(k, []).append(v)
        else:
            words.append(term)
    return fields, words


def matches(fields: dict, words: list, values: dict, text: str) -> bool:
    """Each field term matches its field by substring (sev: as a minimum rank); each word the whole row."""
    for k, wanted in fields.items():
        if k in ("sev", "severity"):
            if not any(severity_rank(values.get("severity", "")) >= severity_rank(_sev(w)) for w in wanted):
                return False
            continue
        v = str(values.get(k, "")).lower()
        if not any(w in v for w in wanted):
            return False
    return all(w in text for w in words)


def _sev(w: str) -> str:
    w = w.lstrip(">=")
    for s in ("critical", "high", "medium", "low", "info"):
        if s.startswith(w):
            return s
    return w


__all__ = ["sev_text", "num", "when", "plain", "safe_text", "cell", "num_cell", "safe_cell", "CELL_MEMO", "KeyTable", "Tile", "FilterBar", "parse_filter",
           "matches", "sort_value", "SEV_LABEL", "SEV_STYLE"]
