"""Where the TUI gets its alerts: the one module to change when the alerts package changes.

* Replay/live: ``producers(inventory)`` returns an ``AlertSink`` that keeps
  every ``Alert`` (``Collector``), and the consumers that raise into it.  When
  ``sensor.alerts.analysis.OfflineAlerts`` is available its stage is used
  (posture, identity, anomalies, scans …); otherwise the inventory's posture
  findings are raised here (``posture.<finding id>``).
* Database: ``read_alerts(db)`` reads the ``alerts`` table (through
  ``sensor.alerts.store.query`` when present, else the same columns directly)
  and ``acknowledge(path, id)`` changes one row's status.
* ``write_evidence(alert, out_dir)`` writes the evidence pcap when the alerts
  package offers it (``sensor.alerts.evidence``); ``evidence_supported()`` says so.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..alerts.model import Alert, AlertSink, Evidence, Finding, add_occurrence, severity_rank

USE_ALERTS_PACKAGE = False
"""The TUI still raises and reads its alerts itself (posture findings, the alerts table's columns).
Switching to ``sensor.alerts`` (its full stage, store and evidence pcaps) changes what every alert
screen shows: the snapshots and the attach, hostile-strings and tmux tests must be redone with it
(issue 16 note).  Until then this flag keeps the TUI as it was tested."""

MAX_ALERTS = 20_000
"""Alerts held by the TUI's collector; beyond it the lowest-severity oldest is forgotten (counted)."""

COLUMNS = ("id", "rule", "severity", "category", "message", "src", "dst", "src_asset", "dst_asset", "src_zone",
           "dst_zone", "protocol", "port", "technique", "first_ts", "last_ts", "count", "evidence", "details",
           "status", "close_reason")


class Collector(AlertSink):
    """Aggregates findings into alerts by id (``model.add_occurrence``) and remembers which changed."""

    def __init__(self, max_alerts: int = MAX_ALERTS):
        self.alerts: dict[str, Alert] = {}
        self.changed: set[str] = set()
        self.max_alerts = max_alerts
        self.forgotten = 0

    def raise_finding(self, f: Finding) -> None:
        aid = f.alert_id
        a = self.alerts.get(aid)
        if a is None:
            if len(self.alerts) >= self.max_alerts:
                victim = min(self.alerts.values(), key=lambda x: (severity_rank(x.severity), x.last_ts))
                del self.alerts[victim.id]
                self.forgotten += 1
            self.alerts[aid] = Alert.from_finding(f)
        else:
            add_occurrence(a, f)
        self.changed.add(aid)

    def put(self, a: Alert) -> None:
        """An alert as another producer aggregated it (the alerts package's book)."""
        self.alerts[a.id] = a
        self.changed.add(a.id)

    def take_changed(self) -> set[str]:
        ch, self.changed = self.changed, set()
        return ch


class PostureAlerts:
    """Fallback producer: inventory ``finding.new`` events → ``posture.<finding>`` alerts."""

    def __init__(self, inventory: Any, sink: AlertSink, source: str = ""):
        self.inventory = inventory
        self.sink = sink
        self.source = source

    def observe(self, obs) -> None:   # a consumer placed after the inventory
        for e in self.inventory.take_events():
            if e.type != "finding.new":
                continue
            d = e.detail
            a = self.inventory.assets.get(e.asset_id)
            ip = a.row.get("ip", "") if a is not None else ""
            subject = str(d.get("subject", ""))
            msg = f"{d.get('finding', '')} on {ip or e.asset_id}" + (f" ({subject})" if subject else "")
            self.sink.raise_finding(Finding(
                "posture." + str(d.get("finding", "")), (e.asset_id, d.get("finding"), subject),
                str(d.get("severity", "medium")), "posture", msg, Evidence(self.source, e.frame, e.ts),
                dst=ip, dst_asset=e.asset_id, details={"subject": subject, "detail": str(d.get("detail", ""))}))


def producers(inventory: Any, source: str = "") -> tuple[Collector, list]:
    """The collector and the consumers (to run after the inventory) that raise alerts into it."""
    col = Collector()
    if not USE_ALERTS_PACKAGE:
        return col, [PostureAlerts(inventory, col, source)]
    from ..alerts.analysis import OfflineAlerts

    off = OfflineAlerts(inventory=inventory)
    off.start_file(source, 0)
    off.sink.add_listener(lambda changes: [col.put(getattr(c, "alert", c)) for c in changes])
    col.book = off.sink                       # policy findings go to the same book
    return col, list(off.consumers) + [_Flusher(off.sink)]


class _Flusher:
    """Flushes the alert book once per batch of observations applied (the UI tick), not per packet."""

    def __init__(self, book):
        self.book = book

    def observe(self, obs) -> None:
        pass

    def tick(self) -> None:
        self.book.flush()


def sink_of(col: Collector) -> AlertSink:
    """Where other producers (the policy checker) raise: the alerts package's book when used."""
    return getattr(col, "book", col)


# ----------------------------------------------------------------------------- database
def _loads(s, default):
    if not isinstance(s, str):
        return default
    try:
        return json.loads(s)
    except ValueError:
        return default


def _from_row(d: dict) -> Alert:
    ev = [Evidence(str(e[0]), int(e[1]), float(e[2]), int(e[3]) if len(e) > 3 else 0)
          for e in d.get("evidence") or [] if isinstance(e, (list, tuple)) and len(e) >= 3]
    return Alert(d["id"], d["rule"] or "", d["severity"] or "info", d["category"] or "", d["message"] or "",
                 d["src"] or "", d["dst"] or "", d["src_asset"] or "", d["dst_asset"] or "", d["src_zone"] or "",
                 d["dst_zone"] or "", d["protocol"] or "", d["port"] or 0, d["technique"] or "",
                 d["first_ts"] or 0.0, d["last_ts"] or 0.0, d["count"] or 0, ev,
                 d["details"] if isinstance(d["details"], dict) else {}, d["status"] or "open",
                 d["close_reason"] or "", False)


def read_alerts(conn: sqlite3.Connection, limit: int = MAX_ALERTS) -> list[Alert]:
    """Open and acknowledged alerts of the database, most severe and recent first (bounded)."""
    if USE_ALERTS_PACKAGE:
        from ..alerts import store as S
        from sqlite_utils import Database

        return [S.from_row(r) for r in S.query(Database(conn), statuses=("open", "acknowledged"), limit=limit)]
    try:
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE status IN ('open', 'acknowledged')"
                           f" ORDER BY last_ts DESC LIMIT {int(limit)}")
    except sqlite3.Error:        # no alerts table: a sensor that only queues alerts for delivery
        return outbox_alerts(conn, limit)
    out = []
    for r in cur:
        d = dict(zip(COLUMNS, r))
        d["evidence"] = _loads(d["evidence"], [])
        d["details"] = _loads(d["details"], {})
        out.append(_from_row(d))
    if not out:                  # an empty table (made by a migration) and alerts only queued for delivery
        return outbox_alerts(conn, limit)
    return out


def outbox_alerts(conn: sqlite3.Connection, limit: int = MAX_ALERTS) -> list[Alert]:
    """The newest state of each alert the outbox holds (``alert`` records; sensor/sinks/alertfeed.py)."""
    try:
        cur = conn.execute("SELECT body FROM outbox WHERE kind = 'alert' ORDER BY seq DESC LIMIT ?", (limit * 4,))
    except sqlite3.Error:
        return []
    seen: dict = {}
    for (body,) in cur:
        d = _loads(body, None)
        if not isinstance(d, dict) or not d.get("id") or d["id"] in seen:
            continue
        d["evidence"] = [[e.get("source", ""), e.get("frame", 0), e.get("ts", 0.0), e.get("flow_id", 0)]
                         if isinstance(e, dict) else e for e in d.get("evidence") or []]
        try:
            seen[d["id"]] = _from_row({c: d.get(c) for c in COLUMNS})
        except (TypeError, ValueError):
            continue
        if len(seen) >= limit:
            break
    return list(seen.values())


def acknowledge(path: str, aid: str) -> str:
    """Acknowledge one stored alert (its own short write transaction); returns what happened."""
    if USE_ALERTS_PACKAGE:
        from ..alerts.store import AlertStore, connect

        st = AlertStore(connect(path))
        try:
            st.ack(aid)
        finally:
            st.close_db()
        return "acknowledged"
    conn = sqlite3.connect(path, timeout=10)
    try:
        with conn:
            n = conn.execute("UPDATE alerts SET status = 'acknowledged' WHERE id = ? AND status = 'open'",
                             (aid,)).rowcount
    except sqlite3.Error as exc:
        return f"not acknowledged ({exc})"
    finally:
        conn.close()
    return "acknowledged" if n else "unchanged"


def evidence_supported() -> bool:
    if not USE_ALERTS_PACKAGE:
        return False
    try:
        from ..alerts import evidence  # noqa: F401
    except ImportError:
        return False
    return True


def write_evidence(alert: Alert, out_dir: str) -> str:
    """Write the evidence pcap of *alert* into *out_dir*; returns a one-line report."""
    from ..alerts.evidence import write_evidence as _write

    rep = _write([alert], out_dir)
    return str(getattr(rep, "summary", lambda: rep)() if callable(getattr(rep, "summary", None)) else rep)


__all__ = ["Collector", "PostureAlerts", "producers", "sink_of", "read_alerts", "acknowledge",
           "evidence_supported", "write_evidence", "MAX_ALERTS"]
