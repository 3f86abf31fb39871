"""The list grammar every table screen shares: title line, ``/`` filter, sort, pause with "+N new".

A screen subclasses ``ListPane`` and supplies:

* ``COLUMNS``: (column key, label, width) — fixed widths (no re-measuring on updates);
* ``all_keys()`` and ``record(key) -> (values, cells) | None``: raw values (for
  the filter) and Text cells (for the table) of one row;
* ``changed_keys(changes) -> set | None``: the rows a model tick touched
  (None: re-read all);
* ``open(key)``: Enter on a row.

Live updates touch only the rows that changed (``KeyTable.upsert``); a filter
or sort change rebuilds once and puts the cursor back on the same row key.
While paused (``p``) the table does not move and the title counts "+N new".
"""
from __future__ import annotations

from functools import lru_cache
from itertools import islice

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from .widgets import CELL_MEMO, SEV_LABEL, FilterBar, KeyTable, matches, parse_filter

LIVE_FILTER_ROWS = 20_000
"""Up to this many rows the list narrows as the filter is typed (one cached pass per key, ~tens of ms
at 10,000 rows); longer lists filter on Enter."""

BULK_ROWS = 500
"""More changed rows than this (or than a quarter of the table) are applied as one reload of the table
from the cache instead of row by row (Textual's add_row/remove_row cost grows with the table)."""

READ_SLICE = 250
"""Rows read per slice by the big lists (Assets, Comms): ~30-60 ms of UI thread, so 10,000 rows are read in
~40 slices with keys answered between them (a screen refresh after each)."""

_SEV_ORDER = {label: i for i, label in enumerate(reversed(list(SEV_LABEL.values())))}


def cell_sort_key(cell):
    """The sort key of a cell (severities by rank, numbers numerically, IPs by octets, text case-folded)."""
    return _text_sort_key(cell.plain if isinstance(cell, Text) else str(cell))


@lru_cache(maxsize=CELL_MEMO)
def _text_sort_key(s: str):
    """Memoised: most cells of a big list repeat (classes, zones, protocols, ports, a broker's label)."""
    if s in _SEV_ORDER:
        return (0, _SEV_ORDER[s], ())
    t = s.replace(",", "")
    try:
        return (0, float(t), ())
    except ValueError:
        pass
    head = s.split(" ", 1)[0].split("→", 1)[0]
    parts = head.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return (1, 0, tuple(int(p) for p in parts))
    return (2, 0, (s.casefold(),))


class ListPane(Vertical):
    COLUMNS: list = []
    TITLE = ""
    DEFAULT_SORT = 0
    SLICE_ROWS: int | None = None
    """Rows re-read per slice (None: all of a refresh at once); the rest follow after the next refresh."""
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("enter", "open", "Open", show=False),
        Binding("less_than_sign", "sort(-1)", "Sort ←", show=False),
        Binding("greater_than_sign", "sort(1)", "Sort →", show=False),
        Binding("s", "sort(1)", "Sort"),
        Binding("I", "invert", "Invert sort", show=False),
    ]

    def __init__(self, model, **kw):
        super().__init__(**kw)
        self.model = model
        self.filter_text = ""
        self.sort_col = self.DEFAULT_SORT
        self.sort_reverse = False
        self.paused = False
        self.new_while_paused = 0
        self._new: set = set()
        self._dirty = True
        self.values: dict = {}          # row key -> raw values (for the filter and the screens)
        self._cells: dict = {}          # row key -> Text cells
        self._text: dict = {}           # row key -> lower-cased text of the values (free-word filter)
        self._sortkey: dict = {}        # row key -> per-column sort keys
        self._filter = None             # parsed filter terms, None when there is no filter
        self._todo: dict = {}           # row keys changed and not re-read yet, in order (SLICE_ROWS at a time)
        self._building = False          # a full read is in progress (the table is loaded when it ends)
        self._build_total = 0
        self._slice_next = False        # the next slice is scheduled

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title", markup=False)
        fb = FilterBar(classes="filter")
        fb.display = False
        yield fb
        yield KeyTable(self.COLUMNS)

    @property
    def table(self) -> KeyTable:
        return self.query_one(KeyTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    # -- hooks ---------------------------------------------------------------------------
    def all_keys(self):
        return ()

    def record(self, key):
        return None

    def changed_keys(self, changes):
        return None

    def open(self, key: str) -> None:
        pass

    def extra_title(self) -> str:
        return ""

    # -- data ----------------------------------------------------------------------------
    def _accept(self, k) -> bool:
        if not self._filter:
            return True
        fields, words = self._filter
        return matches(fields, words, self.values[k], self._text[k])

    def _set_filter_terms(self) -> None:
        self._filter = parse_filter(self.filter_text) if self.filter_text else None

    def _store(self, k, rec) -> bool:
        """Cache one row (raw values, cells, filter text, sort key); False when it is gone."""
        if rec is None:
            self.values.pop(k, None)
            self._cells.pop(k, None)
            self._text.pop(k, None)
            self._sortkey.pop(k, None)
            return False
        values, cells = rec
        self.values[k] = values
        self._cells[k] = cells
        self._text[k] = " ".join(str(v) for v in values.values()).lower()
        self._sortkey[k] = tuple(cell_sort_key(c) for c in cells)
        return True

    def refresh_data(self, changes=None, full: bool = False) -> None:
        """Apply a model tick (only what changed), or re-read everything (full).

        Rows are cached (values, cells, filter text, sort key): a tick re-reads
        only the rows it changed; a filter or sort works on the cache.  With
        ``SLICE_ROWS`` set, at most that many rows are re-read at a time and the
        rest right after the next screen refresh (keys are answered in between):
        a full read of 10,000 rows is spread over slices instead of one block."""
        if self.paused:
            if changes is not None:
                keys = self.changed_keys(changes)
                if keys is None:
                    keys = self.all_keys()
                self._new.update(k for k in keys if k not in self.values)
                self.new_while_paused = len(self._new)
                self._dirty = True
            self._title()
            return
        if not self.is_mounted:
            return
        keys = None if (full or self._dirty or changes is None) else self.changed_keys(changes)
        if keys is None:
            self.values, self._cells, self._text, self._sortkey = {}, {}, {}, {}
            self._todo = dict.fromkeys(self.all_keys())     # in the order given (ties keep it when sorted)
            self._building = True
            self._build_total = len(self._todo)
            self._dirty = False
        else:
            self._todo.update(dict.fromkeys(keys))
        self._work()
        self._title()

    def _work(self, every: bool = False) -> None:
        """Re-read the rows waiting in ``_todo`` (at most ``SLICE_ROWS`` unless *every*); schedule the rest."""
        self._slice_next = False
        if self.paused or not self.is_mounted or not (self._todo or self._building):
            return
        todo = self._todo
        n = len(todo) if every else (self.SLICE_ROWS or len(todo))
        if len(todo) <= n:
            keys, self._todo = list(todo), {}
        else:
            keys = list(islice(todo, n))
            for k in keys:
                del todo[k]
        t = self.table
        if self._building:
            for k in keys:
                self._store(k, self.record(k))
            if not self._todo:
                self._building = False
                self._relist()
            elif not t.row_count:
                self._relist()              # the first slice shows at once; the list completes slice by slice
        elif len(keys) > max(BULK_ROWS, len(t.cells) // 4):
            for k in keys:                  # many rows at once (a screen shown after a busy while): one load
                self._store(k, self.record(k))
            self._relist()
        else:
            added = False
            for k in keys:
                if not self._store(k, self.record(k)):
                    t.drop(k)
                elif self._accept(k):
                    added |= t.upsert(k, self._cells[k])
                else:
                    t.drop(k)
            if added:
                self._sort()
        self.after_work(keys)
        self._title()
        if self._todo and not self._slice_next:
            self._slice_next = True
            self.call_after_refresh(self._next_slice)

    def _next_slice(self) -> None:
        if self._slice_next and self.is_mounted:
            with self.app.batch_update():
                self._work()

    def after_work(self, keys) -> None:
        """Hook: rows *keys* were just re-read."""

    def finish_reading(self) -> None:
        """Re-read every row still waiting (a view that needs all of them, now)."""
        if self.paused or not self.is_mounted:
            return
        self._work(every=True)

    @property
    def reading(self) -> bool:
        """Rows are still waiting to be re-read (a sliced read in progress)."""
        return bool(self._todo) or self._building

    def _relist(self) -> None:
        """The table from the cache: filtered, sorted, cursor kept on its row key (one load)."""
        t = self.table
        keep = t.selected_key()
        keys = [k for k in self._cells if self._accept(k)]
        keys.sort(key=self._order_key(), reverse=self.sort_reverse)
        t.load([(k, self._cells[k]) for k in keys])
        t.restore(keep)

    def _order_key(self):
        c = self.sort_col
        sk = self._sortkey
        # the other columns break ties, so the order never depends on arrival order
        return lambda k: (sk[k][c],) + sk[k]

    def _sort(self, follow: bool = False) -> None:
        """Re-sort; the cursor follows its row (a live update keeps a cursor at the top on the top row)."""
        t = self.table
        if t.row_count and self.COLUMNS:
            keep = t.selected_key() if (follow or t.cursor_row > 0) else None
            keys = sorted(t.cells, key=self._order_key(), reverse=self.sort_reverse)
            t.order(keys)
            if keep is None:
                t.move_cursor(row=0)
            else:
                t.restore(keep)

    def _title(self) -> None:
        if not self.is_mounted:
            return
        col = self.COLUMNS[self.sort_col][1] if self.COLUMNS else ""
        parts = [f"{self.TITLE} {self.table.row_count:,}/{len(self.values):,}"]
        if self.filter_text:
            parts.append(f"filter {self.filter_text}")
        parts.append(f"sort {col}{'↓' if self.sort_reverse else '↑'}")
        if self._building:
            parts.append(f"reading {self._build_total - len(self._todo):,}/{self._build_total:,}")
        extra = self.extra_title()
        if extra:
            parts.append(extra)
        if self.paused:
            parts.append(f"PAUSED +{self.new_while_paused} new")
        self.query_one(".pane-title", Static).update(Text(" · ".join(parts), no_wrap=True, overflow="ellipsis"))

    # -- actions -------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self.new_while_paused = 0
            self._new = set()
            self.refresh_data(full=True)
        self._title()

    def action_filter(self) -> None:
        fb = self.filter_bar
        fb.display = True
        fb.focus()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._set_filter_terms()
        fb = self.filter_bar
        fb.value = self.filter_text
        fb.display = bool(self.filter_text)
        self._refilter()

    def _refilter(self) -> None:
        if self.paused or self._dirty or not self.is_mounted:
            self.refresh_data(full=True)
        else:
            self._relist()
            self._title()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.filter_bar.remember(event.value)
        self.set_filter(event.value)
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        text = event.value.strip()
        if text != self.filter_text and len(self.values) <= LIVE_FILTER_ROWS:   # big lists wait for Enter
            self.filter_text = text
            self._set_filter_terms()
            self._refilter()

    def clear_filter(self) -> bool:
        """Escape: clear the filter first (True when there was one)."""
        fb = self.filter_bar
        if self.filter_text or fb.display:
            self.set_filter("")
            fb.display = False
            self.table.focus()
            return True
        return False

    def action_sort(self, step: int) -> None:
        self.sort_col = (self.sort_col + step) % len(self.COLUMNS)
        self._sort(follow=True)
        self._title()

    def action_invert(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._sort(follow=True)
        self._title()

    def action_open(self) -> None:
        k = self.table.selected_key()
        if k is not None:
            self.open(k)

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        k = event.row_key.value if event.row_key is not None else None
        if k is not None:
            self.open(k)

    def focus_table(self) -> None:
        self.table.focus()
