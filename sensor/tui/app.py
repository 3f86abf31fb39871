"""The TUI application: five screens as tabs over one model, a tick that feeds them, global keys.

``OtwatchApp(model)``: ``model`` is a ``model.LiveModel`` (its feed is
started on mount) or a ``model.DbModel``.  Every ``TICK_S`` the model is
brought up to date (``model.tick()``) and only the visible screen redraws,
inside one ``batch_update``; the hidden ones collect what changed and catch up
when shown.  Keys (the footer shows the main ones, ``?`` all of them, derived
from the bindings; ``ctrl+p`` the command palette):

``1``–``5`` screens · ``/`` filter · Enter open · Esc clear filter / back ·
``p`` pause ("+N new") · ``s`` ``<`` ``>`` ``I`` sort · ``?``/F1 help ·
``ctrl+l`` redraw · ``q`` quit; per screen see its module.
"""
from __future__ import annotations

import asyncio
import time
from functools import partial

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from . import alertsrc, keys
from .alerts import AlertDetail, AlertsPane, evidence_dir
from .assets import AssetsPane
from .comms import CommsPane
from .gcpolicy import GcPolicy
from .help import HelpScreen
from .model import APPLY_SLICE_S, TICK_BUDGET_S, Changes
from .overview import OverviewPane
from .policy import PolicyPane
from .safe import clean

TICK_S = 0.25
"""UI ticks per second: 4 (updates batched; a key waits at most one tick's work)."""

SLICE_HOP_S = 0.001
"""The pause between two slices of a tick (the event loop runs: queued keys are read first)."""
SLICE_LOST_S = 5.0
"""A tick whose next slice has not run for this long is taken as lost and the next tick starts afresh
(belt and braces: the hop is an asyncio timer, which always fires while the app runs)."""

ANSI_THEME = "ansi-dark"
"""Textual's theme of the terminal's own 16 colours (called textual-ansi in older Textual releases)."""
EVIDENCE_NOTICE_S = 15.0
"""Seconds the evidence pcap's path (or why it was not written) stays on screen; the detail keeps it."""
STALE_S = 5.0
"""A live or attached source that changed nothing for this long shows its data age in the header."""

SCREENS = (("overview", "1 Overview", OverviewPane), ("assets", "2 Assets", AssetsPane),
           ("comms", "3 Comms", CommsPane), ("alerts", "4 Alerts", AlertsPane), ("policy", "5 Policy", PolicyPane))


class OtwatchCommands(Provider):
    """Command palette: ``verb: Noun`` commands valid in the current state."""

    def _commands(self):
        app = self.app
        return [(name, partial(getattr(app, method), *args), what) for name, method, args, what in keys.PALETTE]

    async def discover(self) -> Hits:
        for name, cb, help_ in self._commands():
            yield Hit(1.0, name, cb, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, cb, help_ in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_)


class OtwatchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "otwatch"
    COMMANDS = App.COMMANDS | {OtwatchCommands}
    BINDINGS = [
        Binding("1", "show('overview')", "Overview", show=False),
        Binding("2", "show('assets')", "Assets", show=False),
        Binding("3", "show('comms')", "Comms", show=False),
        Binding("4", "show('alerts')", "Alerts", show=False),
        Binding("5", "show('policy')", "Policy", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("p", "pause", "Pause"),
        Binding("b", "baseline", "Baseline", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+l", "redraw", "Redraw", show=False),
        Binding("q", "quit", "Quit"),
    ]
    _SINGLE_KEY_ACTIONS = {"show", "help", "pause", "quit", "baseline"}

    def __init__(self, model, tick: float = TICK_S, ansi: bool = False, start_feed: bool = True):
        super().__init__(ansi_color=ansi)
        self.model = model
        self.tick_s = tick
        self.paused = False
        self.start_feed = start_feed
        self.pending: dict[str, Changes] = {k: Changes() for k, _l, _c in SCREENS}
        self._ansi = ansi
        self.last_change = time.monotonic()
        self._applying = False          # a tick's observations are being applied, a slice at a time
        self._tick_left = 0.0
        self._slice_at = 0.0            # when the last slice scheduled the next one
        self.gc_policy = GcPolicy()
        """The cyclic collector runs between ticks while the app runs (gcpolicy.py)."""
        self._finished_seen = False
        self.evidence_written: dict[str, tuple[str, list[str]]] = {}
        """alert id -> (what the last evidence export said, files written): shown in the alert's detail."""

    def compose(self) -> ComposeResult:
        # widgets are kept by reference: while a detail or help screen is on top, app.query_one
        # would search that screen, and the tick still updates these
        self._status_w = Static("", id="status", markup=False)
        self._tabs = TabbedContent(id="tabs")
        self._panes = {}
        yield self._status_w
        with self._tabs:
            for key, label, cls in SCREENS:
                with TabPane(label, id=key):
                    self._panes[key] = cls(self.model, id=f"pane-{key}")
                    yield self._panes[key]
        yield Footer()

    def on_mount(self) -> None:
        self.gc_policy.install()            # before the feed's thread sets tune_gc's thresholds: undone on unmount
        if self._ansi:
            self.theme = ANSI_THEME
        feed = getattr(self.model, "feed", None)
        if feed is not None and self.start_feed:
            feed.start()
        self.refresh_all()
        self.set_interval(self.tick_s, self.tick)
        self.pane("overview").focus_table()

    def on_unmount(self) -> None:
        self.model.close()
        self.gc_policy.uninstall()

    def _input_waiting(self) -> bool:
        """A message (a key, a click) is queued for the app: a collection now would make it wait."""
        q = getattr(self, "_message_queue", None)
        return q is not None and not q.empty()

    def _at_rest(self) -> None:
        """The end of a tick: the collector may run now (gcpolicy.py), once more in full when a replay ended."""
        if not self.is_running or self._exit:
            return
        final = bool(getattr(self.model, "finished", False)) and not self._finished_seen
        self._finished_seen |= final
        self.gc_policy.at_rest(busy=self._input_waiting(), final=final)

    # -- data --------------------------------------------------------------------------------
    def pane(self, key: str):
        return self._panes[key]

    @property
    def current(self) -> str:
        return self._tabs.active or "overview"

    def tick(self) -> None:
        """Every ``tick_s``: apply the model's observations (a live model: ``TICK_BUDGET_S`` of them, a slice
        of ``APPLY_SLICE_S`` at a time, each slice scheduled through the event loop so that a key typed
        meanwhile is answered before the next slice), then redraw the visible screen once."""
        if not self.is_running or self._exit:
            return              # a tick that fires while the app is closing finds its widgets gone
        if self._applying and time.monotonic() - self._slice_at < SLICE_LOST_S:
            return              # the last tick's slices are still being applied
        if not hasattr(self.model, "more"):
            self._merge(self.model.tick())
            self._redraw()
            self.call_after_refresh(self._at_rest)
            return
        self._applying = True
        self._tick_left = TICK_BUDGET_S
        self._apply_slice()

    def _apply_slice(self) -> None:
        if not self.is_running or self._exit:
            self._applying = False
            return
        t0 = time.monotonic()
        self._merge(self.model.tick(min(APPLY_SLICE_S, self._tick_left)))
        self._tick_left -= time.monotonic() - t0
        if self._tick_left > 0 and self.model.more():
            # the next slice goes to the back of the app's message queue once the event loop has run (an
            # asyncio timer): a key typed meanwhile is in the queue by then and handled first.  Not Textual's
            # set_timer: a one-shot Timer whose task starts after its deadline (a busy or loaded event loop)
            # is skipped, never fired, and the replay would stop for good with _applying set
            self._slice_at = time.monotonic()
            asyncio.get_running_loop().call_later(SLICE_HOP_S, self.call_later, self._apply_slice)
            return
        self._applying = False
        self._redraw()
        self.call_after_refresh(self._at_rest)      # once the screen is painted

    def _merge(self, ch: Changes) -> None:
        if ch.any:
            self.last_change = time.monotonic()
            for p in self.pending.values():
                p.assets |= ch.assets
                p.alerts |= ch.alerts
                p.any = True

    def _redraw(self) -> None:
        if not self.is_running or self._exit:
            return
        cur = self.current
        with self.batch_update():
            pend = self.pending[cur]
            if pend.any or cur == "overview":
                self.pending[cur] = Changes()
                self.pane(cur).refresh_data(pend)
            if self.paused:
                for k, _l, _c in SCREENS:
                    if k != cur and self.pending[k].any:
                        self.pane(k).refresh_data(self.pending[k])
                        self.pending[k] = Changes()
            self._status()

    def refresh_all(self) -> None:
        """Re-read everything: the visible screen now, the others when they are shown (a 10,000-row
        list is built once, when it is first looked at, not at start-up)."""
        cur = self.current
        for k, _l, _c in SCREENS:
            self.pending[k] = Changes()
            if k == cur:
                self.pane(k).refresh_data(full=True)
            else:
                self.pending[k].assets.add("*")
                self.pending[k].any = True
        self._status()

    def _status(self) -> None:
        m = self.model
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("otwatch ", style="bold")
        t.append(clean(m.status, 100))
        t.append(f" · {len(m.assets):,} assets · {sum(1 for a in list(m.alerts.values()) if a.status == 'open'):,}"
                 f" open alerts")
        age = time.monotonic() - self.last_change
        if age >= STALE_S and m.mode in ("live", "db"):
            t.append(f" · data {age:,.0f} s old", style="dim")
        if self.paused:
            t.append(" · PAUSED", style="bold reverse")
        if getattr(m, "read_only", False):
            t.append(" · RO", style="bold")
        self._status_w.update(t)

    def mark_alert_changed(self, aid: str) -> None:
        for p in self.pending.values():
            p.alerts.add(aid)
            p.any = True

    # -- navigation --------------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        if action in self._SINGLE_KEY_ACTIONS and isinstance(self.focused, Input):
            return False           # typing "1" or "q" into the filter must not switch screens or quit
        if action == "reload_policy" and not getattr(self.model, "policy_path", None):
            return None
        return True

    def action_show(self, key: str) -> None:
        if len(self.screen_stack) > 1 and not isinstance(self.screen, HelpScreen):
            self.pop_screen()
        self._tabs.active = key
        pend = self.pending[key]
        self.pending[key] = Changes()
        pane = self.pane(key)
        if pend.any:
            pane.refresh_data(pend)
        pane.focus_table()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.is_running or self._exit:
            return              # activated while the app closes (a tick merged changes meanwhile): widgets gone
        key = event.pane.id
        if key in self.pending and self.pending[key].any:
            pend = self.pending[key]
            self.pending[key] = Changes()
            self.pane(key).refresh_data(pend)

    def show_list(self, target: str, query: str = "") -> None:
        self.action_show(target)
        pane = self.pane(target)
        if hasattr(pane, "set_filter"):
            pane.set_filter(query)
            pane.focus_table()

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
            return
        pane = self.pane(self.current)
        if pane.clear_filter():
            return
        if self.current != "overview":
            self.action_show("overview")

    def action_clear_filter(self) -> None:
        self.pane(self.current).clear_filter()

    def action_pause(self) -> None:
        self.paused = not self.paused
        for k, _l, _c in SCREENS:
            self.pane(k).set_paused(self.paused)
        self._status()

    def action_help(self) -> None:
        pane = self.pane(self.current)
        groups = [(f"{dict((k, l) for k, l, _ in SCREENS)[self.current]} screen", list(type(pane).BINDINGS) +
                   [b for cls in type(pane).__mro__[1:] for b in getattr(cls, "BINDINGS", [])])]
        groups.append(("Everywhere", list(self.BINDINGS) + keys.EVERYWHERE_EXTRA))
        groups.append(("Tables", keys.TABLE_KEYS))
        self.push_screen(HelpScreen(groups))

    def action_redraw(self) -> None:
        self.refresh(layout=True)
        self.screen.refresh(layout=True)

    def action_reload_policy(self) -> None:
        self.action_show("policy")
        self.pane("policy").action_reload()

    def action_baseline(self) -> None:
        from .baselinescreen import BaselineScreen

        if len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(BaselineScreen(self.model))

    def action_talk_map(self) -> None:
        self.action_show("comms")
        self.pane("comms").action_talk_map()

    def action_matrix(self) -> None:
        self.action_show("comms")
        pane = self.pane("comms")
        if not pane.matrix_shown:
            pane.action_matrix()

    # -- evidence ----------------------------------------------------------------------------
    def write_evidence(self, aid: str) -> None:
        a = self.model.alerts.get(aid)
        if a is None:
            self.notify("no such alert", markup=False, severity="warning")
            return
        self._write_evidence(a, evidence_dir())

    @work(thread=True, exclusive=True, group="evidence")
    def _write_evidence(self, alert, out_dir: str) -> None:
        try:
            msg, files = alertsrc.write_evidence(alert, out_dir)
        except Exception as exc:   # noqa: BLE001 - shown to the operator, never a traceback
            msg, files = f"evidence not written: {type(exc).__name__}: {exc}", []
        self.call_from_thread(self._evidence_done, alert.id, msg, files)

    def _evidence_done(self, aid: str, msg: str, files: list[str]) -> None:
        """Say where the pcap went (or why not): a notification, and in the alert's detail for good."""
        self.evidence_written[aid] = (msg, files)
        self.notify(clean(msg, 1000), markup=False, severity="information" if files else "error",
                    timeout=EVIDENCE_NOTICE_S)
        if isinstance(self.screen, AlertDetail) and self.screen.aid == aid:
            self.screen.refresh_body()
