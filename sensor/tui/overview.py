"""Overview screen: the plant at a glance; every tile is a door to the list behind it.

Tiles (arrow keys or Tab move between them, Enter opens):

* Traffic: packets/s and messages/s with a sparkline (Textual ``Sparkline``,
  block glyphs; ``ascii_spark`` is the plain fallback) → Communications by rate;
* Protocols: messages per protocol → Communications ``proto:``;
* Assets: assets by device class → Assets ``class:``;
* Alerts: open alerts by severity → Alerts ``sev:``;
* Capture: decode coverage, drops, how much of the file was read, the policy → Policy;
* Memory: resident memory against the memcap (``--memcap``, parsers/budget.py),
  the engine's flows, hosts and links against their caps, and how many were
  evicted to stay within them (``budget.usage``: the engine's counters, or the
  attached sensor's heartbeat) → Communications.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import Sparkline, Static

from otwatch.parsers.budget import MIB

from ..alerts.model import SEVERITIES
from .safe import clean
from .widgets import SEV_LABEL, SEV_STYLE, Tile

ASCII_LEVELS = " .:-=+*#"


def ascii_spark(values, width: int = 30) -> str:
    """A sparkline in plain ASCII (for consoles without block glyphs)."""
    vals = list(values)[-width:]
    if not vals:
        return ""
    hi = max(vals) or 1
    return "".join(ASCII_LEVELS[min(len(ASCII_LEVELS) - 1, int(v / hi * (len(ASCII_LEVELS) - 1)))] for v in vals)


def _bar(n: int, total: int, width: int = 6) -> str:
    k = min(width, round(width * n / total)) if total else 0
    return "█" * k + "·" * (width - k)


def memory_text(rss: int, b: dict) -> Text:
    """The Memory tile: resident memory against the memcap, tables against their caps, evictions."""
    t = Text()
    cap = b.get("memcap") or 0
    if rss and cap:
        frac = rss / cap
        t.append(f"{rss / MIB:,.0f} of {cap / MIB:,.0f} MiB memcap\n")
        t.append(f"{_bar(rss, cap, 12)} {frac * 100:3.0f}%\n", style="bold red" if frac >= 1 else "")
    elif rss:
        t.append(f"{rss / MIB:,.0f} MiB (memcap -)\n")
    else:
        t.append("memory -\n", style="dim")
    for table in ("flows", "hosts", "links"):
        n, most = b.get(f"{table}_active"), b.get(f"max_{table}")
        if most:
            t.append(f"{table:<6}{n or 0:,} of {most:,}\n", style="bold" if (n or 0) >= most else "")
    if not b:
        t.append("tables -\n", style="dim")
        return t
    ev = {k: b.get(f"evicted_{k}", 0) for k in ("flows", "hosts", "links")}
    total = sum(ev.values())
    t.append(f"evicted {total:,}", style="bold red" if total else "dim")
    if total:
        t.append(" (" + " ".join(f"{k[0]} {v:,}" for k, v in ev.items() if v) + ")")
    t.append("\n")
    more = [(f"{b[k]:,} {label}") for k, label in (("evicted_keys", "keys evicted"), ("over_cap", "over cap"),
                                                   ("reassembly_drains", "reassembly drains")) if b.get(k)]
    if more:
        t.append(", ".join(more) + "\n", style="bold red")
    return t


class OverviewPane(Vertical):
    BINDINGS = [Binding("left", "move(-1)", "Tile to the left", show=False),
                Binding("right", "move(1)", "Tile to the right", show=False),
                Binding("up", "move(-3)", "Tile above", show=False), Binding("down", "move(3)", "Tile below", show=False)]
    """Tiles are three a row: up and down move by a row."""

    def __init__(self, model, **kw):
        super().__init__(**kw)
        self.model = model
        self.paused = False

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title", markup=False)
        with Grid(id="tiles"):
            with Vertical(id="traffic-cell") as cell:
                cell.border_title = "Traffic"
                yield Tile("", "comms", "", id="t-traffic")
                yield Sparkline([], id="spark")
            yield Tile("Protocols", "comms", "", id="t-proto")
            yield Tile("Assets by class", "assets", "", id="t-assets")
            yield Tile("Alerts by severity", "alerts", "", id="t-alerts")
            yield Tile("Capture", "policy", "", id="t-capture")
            yield Tile("Memory", "comms", "", id="t-memory")

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self.refresh_data(full=True)

    def clear_filter(self) -> bool:
        return False

    def focus_table(self) -> None:
        self.query_one("#t-traffic", Tile).focus()

    def action_move(self, step: int) -> None:
        tiles = list(self.query(Tile))
        cur = self.app.focused
        i = tiles.index(cur) if cur in tiles else 0
        tiles[(i + step) % len(tiles)].focus()

    def refresh_data(self, changes=None, full: bool = False) -> None:
        if self.paused or not self.is_mounted:
            return
        m = self.model
        s = m.stats
        pr = s.packet_rate[-1] if s.packet_rate else 0.0
        mr = s.message_rate[-1] if s.message_rate else 0.0
        t = Text()
        t.append(f"{pr:>10,.0f} packets/s\n", style="bold")
        t.append(f"{mr:>10,.0f} messages/s\n")
        t.append(f"{s.packets:>10,} packets\n{s.messages:>10,} messages\n", style="dim")
        t.append(ascii_spark(s.message_rate or s.packet_rate, 24), style="dim")
        self.query_one("#t-traffic", Tile).update(t)
        self.query_one("#spark", Sparkline).data = list(s.message_rate) or [0.0]

        tot = sum(s.by_protocol.values())
        t = Text()
        for proto, n in s.by_protocol.most_common(5):
            t.append(f"{clean(proto, 8)[:7]:<7} {_bar(n, tot)} {n:>7,}\n")
        if not tot:
            t.append("no messages yet", style="dim")
        top = s.by_protocol.most_common(1)
        tile = self.query_one("#t-proto", Tile)
        tile.query_text = f"proto:{top[0][0]}" if top else ""
        tile.update(t)

        classes: dict = {}
        for row in m.assets.values():
            c = row.get("device_class") or "unknown"
            classes[c] = classes.get(c, 0) + 1
        t = Text()
        for c, n in sorted(classes.items(), key=lambda kv: -kv[1])[:5]:
            t.append(f"{clean(c)[:14]:<14} {n:>6,}\n")
        t.append(f"{'total':<14} {len(m.assets):>6,}", style="bold")
        tile = self.query_one("#t-assets", Tile)
        tile.update(t)

        by_sev = {sv: 0 for sv in SEVERITIES}
        for a in list(m.alerts.values()):
            if a.status == "open":
                by_sev[a.severity] = by_sev.get(a.severity, 0) + 1
        t = Text()
        worst = ""
        for sv in reversed(SEVERITIES):
            n = by_sev.get(sv, 0)
            if n and not worst:
                worst = sv
            t.append(f"{SEV_LABEL[sv]:<7}", style=SEV_STYLE[sv] if n else "dim")
            t.append(f" {n:>6,}\n", style="" if n else "dim")
        tile = self.query_one("#t-alerts", Tile)
        tile.query_text = f"sev:{worst}" if worst else ""
        tile.update(t)

        t = Text()
        cov = s.coverage
        t.append(f"decode coverage {cov * 100:5.1f}%\n" if cov is not None else "decode coverage   -\n")
        t.append(f"drops {s.dropped:,}\n", style="bold red" if s.dropped else "")
        if s.progress is not None:
            t.append(f"capture read {s.progress * 100:3.0f}%\n")
        pol = "policy: " + (clean(m.policy.name or m.policy_path, 30) if m.policy is not None else
                            ("errors" if m.policy_errors else "none"))
        t.append(pol, style="red" if m.policy_errors else "dim")
        self.query_one("#t-capture", Tile).update(t)
        self.query_one("#t-memory", Tile).update(memory_text(s.rss_bytes, s.budget))
        self.query_one(".pane-title", Static).update(
            Text(f"Overview · {clean(m.status, 80)} · Enter opens a tile", no_wrap=True, overflow="ellipsis"))

    def on_tile_open(self, event: Tile.Open) -> None:
        event.stop()
        self.app.show_list(event.target, event.query)
