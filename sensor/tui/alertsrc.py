"""Where the TUI gets its alerts: the alerts package (sensor/alerts), the one module that knows it.

* Replay/live: ``producers(inventory, source, policy)`` runs the alerts
  package's stage (``sensor.alerts.analysis.OfflineAlerts``: posture,
  identity, anomalies, scans, logins …, with the rule ids, severities and
  ATT&CK techniques of ``sensor.alerts.catalogue``); the policy checker raises
  into the same book (``sink_of``).  The book is flushed once per UI tick and
  every changed alert lands in the ``Collector`` the screens read.
* Database: ``read_alerts(db)`` reads the alerts store of a database opened
  by the shared store's reader (``sensor.store.open_read``, via ``dbread``)
  (``sensor.alerts.store.query``: open and acknowledged, most severe and
  recent first); only where the ``alerts`` table does not exist (a database
  from a sensor without the alert store) it falls back to the outbox's
  ``alert`` records.  ``acknowledge(path, id)`` is the store's ``ack``
  (through ``sensor.store``'s writer; a lock another process holds is waited
  for ``WRITE_WAIT`` seconds at most, then said, so the screen never freezes).
* ``write_evidence(alert, out_dir)`` writes the evidence pcap
  (``sensor.alerts.evidence``).
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from ..alerts.model import Alert, AlertSink, Evidence, Finding, add_occurrence, severity_rank

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


def producers(inventory: Any, source: str = "", policy: Any = None,
              baseline_path: str | None = None, posture_alerts: bool = False) -> tuple[Collector, list]:
    """The collector and the consumers (to run after the inventory) that raise alerts into it.

    *policy*: the loaded policy, whose ``detections`` settings (severity, allow-lists, disabled rules)
    apply to every alert, as in ``otwatch analyze --policy``.  *baseline_path*: a stored baseline whose
    detector raises ``baseline.*`` departures (``analyze --baseline``); the collector's ``detector``.
    *posture_alerts*: the configuration posture findings are raised as alerts too (``--posture-alerts``)."""
    from ..alerts.analysis import OfflineAlerts, baseline_detector
    from ..alerts.settings import AlertSettings

    col = Collector()
    settings = (AlertSettings.from_policy(policy, posture_alerts) if policy is not None
                else AlertSettings(posture_alerts=True) if posture_alerts else None)
    off = OfflineAlerts(settings, inventory=inventory)
    col.detector = None
    if baseline_path:
        col.detector = baseline_detector(baseline_path, off.sink)
        off.add_producer(col.detector)
    off.start_file(source, 0)
    off.book.add_listener(lambda changes: [col.put(c.alert) for c in changes])
    col.book = off.book                       # policy findings go to the same book
    return col, list(off.consumers) + [_Flusher(off)]


class _Flusher:
    """Flushes the alert book once per batch of observations applied (the UI tick), not per packet;
    ``finish()`` at the end of a capture (the stage's end-of-capture alerts: scan summaries …)."""

    def __init__(self, off):
        self.off = off

    def observe(self, obs) -> None:
        pass

    def observe_aggregates(self, batch) -> None:
        pass

    def tick(self) -> None:
        self.off.book.flush()

    def finish(self) -> None:
        self.off.finish()
        self.off.book.flush()


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


WRITE_WAIT = 5.0
"""Seconds an acknowledgement or close waits for another process's write lock before it says so."""


def read_alerts(db: "Database | sqlite3.Connection", limit: int = MAX_ALERTS) -> list[Alert]:
    """Open and acknowledged alerts of the database's store, most severe and recent first (bounded);
    the outbox's alert records only when the database has no ``alerts`` table.  *db*: the store's
    reader (``sensor.store.open_read``), or a connection of it."""
    from sqlite_utils import Database

    from ..alerts import store as S

    if not isinstance(db, Database):
        db = Database(db)
    try:
        if not S.has_alerts_table(db):
            return outbox_alerts(db.conn, limit)
        return [S.from_row(r) for r in S.query(db, statuses=("open", "acknowledged"), limit=limit)]
    except sqlite3.Error:
        return []


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


def _on_store(path: str, fn, failed: str) -> str:
    """``fn(store)`` on the database's alert store, opened for this one write (waiting at most
    ``WRITE_WAIT`` for another process's lock); what it returns, or ``failed (why)``."""
    from ..alerts.store import AlertStore, connect
    from ..store import StoreError, wait_limit

    with wait_limit(WRITE_WAIT):
        try:
            st = AlertStore(connect(path, create=False))
        except (OSError, sqlite3.Error, ValueError, StoreError) as exc:
            return f"{failed} ({exc})"
        try:
            return fn(st)
        except (sqlite3.Error, StoreError) as exc:
            return f"{failed} ({exc})"
        finally:
            st.close_db()


def acknowledge(path: str, aid: str) -> str:
    """Acknowledge one stored alert through the store (its own short write transaction); what happened."""
    def ack(st) -> str:
        try:
            st.ack(aid)
        except KeyError:
            return "no such alert"
        except ValueError:
            return "unchanged"
        return "acknowledged"

    return _on_store(path, ack, "not acknowledged")


def close_accepted(path: str, aid: str, entry: str) -> str:
    """Close a stored alert as accepted (learned into the baseline), with the entry as its note."""
    def close(st) -> str:
        try:
            row = st.get(aid)
            if row is None:
                return "no such alert"
            if row["status"] == "closed":
                if row["close_reason"] == "accepted":
                    return "closed"
                st.reopen(aid)
            st.close(aid, "accepted", f"learned into the baseline: {entry}"[:500])
        except (KeyError, ValueError) as exc:
            return f"not closed ({exc})"
        return "closed"

    return _on_store(path, close, "not closed")


SOURCE_SHOWN = 200
"""Characters of a capture's name in a message (a database may name a 10,000-character one): the reason
after it must still be on screen."""


def _cut(text: str) -> str:
    return text if len(text) <= SOURCE_SHOWN else text[:SOURCE_SHOWN] + "…"


def shown_path(path: str) -> str:
    """*path* as the operator can type it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith(os.pardir) else os.path.abspath(path)


def write_evidence(alert: Alert, out_dir: str) -> tuple[str, list[str]]:
    """Write the evidence pcap of *alert* into *out_dir* (created if need be); returns a one-line report
    and the files written.  Errors (a read-only folder, a capture gone) are in the line, never raised."""
    from ..alerts.evidence import write_evidence as _write

    try:
        os.makedirs(out_dir, exist_ok=True)
        rep = _write([alert], out_dir)
    except (OSError, ValueError) as exc:
        return f"evidence not written: {shown_path(out_dir)}: {getattr(exc, 'strerror', None) or exc}", []
    files = [shown_path(f) for f in rep.files]
    why = [f"cannot write {shown_path(p)}: {what}" for p, what in rep.failed.items()]
    why += [f"{_cut(src or '-')}: {what}" for src, what in rep.skipped_sources.items()]
    if files:
        more = f" (and {len(files) - 1} more)" if len(files) > 1 else ""
        return f"evidence pcap: {rep.packets} packets written to {files[0]}{more}" + \
            (f"; not written: {'; '.join(why)}" if why else ""), files
    return f"evidence not written: {'; '.join(why) or 'no evidence frames'}", []


__all__ = ["Collector", "producers", "sink_of", "read_alerts", "acknowledge", "close_accepted", "write_evidence", "MAX_ALERTS"]
