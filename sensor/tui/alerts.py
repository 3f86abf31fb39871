"""Alerts screen: the live feed with severity words and colours, filters, detail, acknowledge, evidence pcap.

Newest first by default; a row shows severity (word + colour), last time,
rule, source → destination, count, status and the message.  Filter terms:
``sev:high`` (that severity or above), ``rule: asset: zone: cat: status:``
and free words.  ``a`` acknowledges (no policy or baseline change; refused in
read-only mode), ``L`` accepts a ``baseline.*`` departure into the baseline
(its entry learned through sensor/baseline/accept.py, the alert closed as
accepted), ``e`` writes the evidence pcap (the alert's frames and
their flows, ``sensor.alerts.evidence``) into ``$OTWATCH_EVIDENCE_DIR`` or ./evidence, Enter opens the detail: every field, the evidence pointers (source,
frame, time, flow) and the ATT&CK for ICS technique.

The feed holds at most ``FEED_MAX`` rows (the most recent); older alerts stay
in the model/database and are reached through the filter.
"""
from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .listpane import ListPane
from .safe import clean, safe_text
from .widgets import num, plain, sev_text, when

FEED_MAX = 2000
"""Rows the feed shows (a flood is a count in the title, not a scrolling blur)."""


def _technique(a) -> str:
    if not a.technique:
        return ""
    try:
        from ..alerts.catalogue import TECHNIQUES

        name = TECHNIQUES.get(a.technique)
        if isinstance(name, tuple):
            name = name[0]
        return f"{a.technique} {name}" if name else a.technique
    except ImportError:
        return a.technique


class AlertsPane(ListPane):
    TITLE = "Alerts"
    COLUMNS = [("sev", "Sev", 6), ("last", "Last", 8), ("status", "St", 4), ("count", "×", 5), ("rule", "Rule", 20),
               ("pair", "Src → Dst", 24), ("message", "Message", 60)]
    DEFAULT_SORT = 1
    BINDINGS = [Binding("a", "ack", "Ack"), Binding("e", "evidence", "Evidence pcap"),
                Binding("L", "accept", "Accept into baseline")]

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self.sort_reverse = True

    def all_keys(self):
        al = sorted(self.model.alerts.values(), key=lambda a: a.last_ts, reverse=True)[:FEED_MAX]
        return [a.id for a in al]

    def changed_keys(self, changes):
        if len(self.values) >= FEED_MAX and changes.alerts:
            return None
        return set(changes.alerts)

    def extra_title(self) -> str:
        n = len(self.model.alerts)
        return f"{n:,} held, newest {FEED_MAX:,} listed" if n > FEED_MAX else ""

    def record(self, aid):
        a = self.model.alerts.get(aid)
        if a is None:
            return None
        values = {"id": a.id, "severity": a.severity, "rule": a.rule, "cat": a.category, "category": a.category,
                  "asset": f"{a.src} {a.dst} {a.src_asset} {a.dst_asset}", "zone": f"{a.src_zone} {a.dst_zone}",
                  "src": a.src, "dst": a.dst, "status": a.status, "message": a.message, "count": a.count,
                  "last": a.last_ts, "technique": a.technique}
        status = {"open": "open", "acknowledged": "ack", "closed": "closed"}.get(a.status, a.status)
        dim = "dim" if a.status != "open" else ""
        cells = (sev_text(a.severity), plain(when(a.last_ts), dim), plain(status, dim), num(a.count),
                 safe_text(a.rule, 64, dim), safe_text(f"{a.src or '-'} → {a.dst or '-'}", 64, dim),
                 safe_text(a.message, 200, dim))
        return values, cells

    def open(self, key: str) -> None:
        self.app.push_screen(AlertDetail(self.model, key))

    def action_ack(self) -> None:
        k = self.table.selected_key()
        if k is None:
            return
        msg = self.model.acknowledge(k)
        self.refresh_data(_one(k))
        self.app.notify(f"alert {k[:10]}: {msg}", markup=False)

    def action_evidence(self) -> None:
        k = self.table.selected_key()
        if k is None:
            return
        self.app.write_evidence(k)

    def action_accept(self) -> None:
        """Learn the selected baseline departure into the baseline and close it as accepted."""
        k = self.table.selected_key()
        if k is None:
            return
        msg = self.model.accept(k)
        self.refresh_data(_one(k))
        self.app.notify(f"alert {k[:10]}: {msg}", markup=False)

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("ack", "accept") and getattr(self.model, "read_only", False):
            return False
        return True


class _one:
    def __init__(self, aid):
        self.alerts = {aid}
        self.assets = set()
        self.any = True


def alert_text(model, aid: str, evidence: tuple[str, list[str]] | None = None) -> Text:
    """The detail of alert *aid*; *evidence*: what its last evidence export said (message, files)."""
    a = model.alerts.get(aid)
    out = Text()
    if a is None:
        out.append("alert gone", style="dim")
        return out
    out.append_text(sev_text(a.severity))
    out.append(" ")
    out.append(clean(a.rule), style="bold")
    out.append(f"  ({a.category}, {a.status}{', ' + a.close_reason if a.close_reason else ''})\n")
    out.append(clean(a.message, 2000))
    out.append("\n\n")
    rows = [("id", a.id), ("source", f"{a.src or '-'} (asset {a.src_asset or '-'}, zone {a.src_zone or '-'})"),
            ("destination", f"{a.dst or '-'} (asset {a.dst_asset or '-'}, zone {a.dst_zone or '-'})"),
            ("protocol", f"{a.protocol or '-'} port {a.port or '-'}"),
            ("ATT&CK for ICS", _technique(a) or "-"),
            ("first / last", f"{when(a.first_ts)} / {when(a.last_ts)} (packet time, UTC)"),
            ("occurrences", f"{a.count:,}")]
    for k, v in rows:
        out.append(f"{k:>15}  ", style="bold")
        out.append(clean(v, 400))
        out.append("\n")
    out.append("\nEvidence (source · frame · time · flow)\n", style="bold underline")
    for e in a.evidence:
        out.append(f"  {clean(e.source, 120)} · frame {e.frame} · {when(e.ts)} · flow {e.flow_id}\n")
    if evidence is not None:
        msg, files = evidence
        out.append("  ")
        out.append(clean(msg, 1000), style="" if files else "bold red")
        out.append("\n")
    if a.details:
        out.append("\nDetails\n", style="bold underline")
        for k, v in sorted(a.details.items(), key=lambda kv: str(kv[0])):
            out.append(f"  {clean(k, 64)}: ", style="bold")
            out.append(clean(v if isinstance(v, str) else repr(v), 400))
            out.append("\n")
    return out


class AlertDetail(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("a", "ack", "Ack"),
                Binding("e", "evidence", "Evidence pcap"), Binding("L", "accept", "Accept into baseline")]

    def __init__(self, model, aid: str):
        super().__init__()
        self.model = model
        self.aid = aid

    def _text(self) -> Text:
        return alert_text(self.model, self.aid, getattr(self.app, "evidence_written", {}).get(self.aid))

    def refresh_body(self) -> None:
        self.query_one("#detail-body", Static).update(self._text())

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(self._text(), markup=False, id="detail-body")
        yield Footer()

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("ack", "accept") and getattr(self.model, "read_only", False):
            return False
        return True

    def action_ack(self) -> None:
        msg = self.model.acknowledge(self.aid)
        self.refresh_body()
        self.app.notify(f"alert {self.aid[:10]}: {msg}", markup=False)
        self.app.mark_alert_changed(self.aid)

    def action_evidence(self) -> None:
        self.app.write_evidence(self.aid)

    def action_accept(self) -> None:
        msg = self.model.accept(self.aid)
        self.refresh_body()
        self.app.notify(f"alert {self.aid[:10]}: {msg}", markup=False)
        self.app.mark_alert_changed(self.aid)


def evidence_dir() -> str:
    return os.environ.get("OTWATCH_EVIDENCE_DIR") or os.path.join(os.getcwd(), "evidence")
