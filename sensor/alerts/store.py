"""Alerts in SQLite, in the inventory's database (table ``alerts``).

Contract
--------
* ``open_store(path)`` opens the shared database (``sensor.store``: the
  inventory's, default location as ``otwatch inventory``; WAL, busy timeout)
  with this module's migration set ``otwatch.alerts`` registered, so the
  alerts live beside the assets they name.  ``AlertStore(db)`` wraps an open sqlite-utils ``Database``.
* ``store.write(changes)`` is an ``AlertBook`` listener: one transaction per
  flush, one upsert per changed alert, by id:
  - a new id is inserted ``open``;
  - an existing one gets ``count += delta``, ``first_ts = min``, ``last_ts =
    max``, severity the higher of the two, evidence merged (the stored first
    pointers, then the new ones, deduplicated, bounded by ``MAX_EVIDENCE``
    with the latest kept last), details updated;
  - **status is never reset by a re-run of the same condition**: an open or
    acknowledged alert keeps its status, an alert closed as ``accepted``
    (learned into the baseline) stays closed; the one exception is an alert
    closed as ``resolved`` that fires again: it reopens (``status = open``,
    ``reopened += 1``), because "resolved" claimed the condition was gone.
* Lifecycle (``ack``, ``close``): open → acknowledged → closed (resolved |
  accepted); closing an open alert directly is allowed; ``reopen`` puts a
  closed one back.  Status changes carry who made them (``status_by``: the
  operator's login name, or what ``--by`` says) and the wall-clock time of the
  action (``status_at``, ISO 8601 UTC) — the only wall-clock value stored.
  ``otwatch baseline accept ID`` closes the alert it learned as ``accepted``.
* Writes go through the shared database's ``write_transaction`` (``BEGIN
  IMMEDIATE`` with retry), so an analysis and an operator's ``alerts ack``
  take turns instead of failing with "database is locked".  Readers
  (``otwatch alerts``) open it read-only (``open_read``) and never block a
  writer (WAL).
* Every value goes through SQL parameters; strings are stored as received.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sqlite3
from typing import Iterable

from sqlite_utils import Database, Migrations

from ..store import DatabaseBusy, NoDatabase, migrate, open_read, open_write, register, write_transaction

from .aggregate import AlertChange
from .model import CLOSE_REASONS, MAX_EVIDENCE, SEVERITIES, Alert, Evidence, severity_rank

migrations = register(Migrations("otwatch.alerts"))
"""Registered with the shared database (``sensor.store``): ``open_write`` applies it with the others."""

COLUMNS = ("id", "rule", "severity", "category", "message", "src", "dst", "src_asset", "dst_asset", "src_zone",
           "dst_zone", "protocol", "port", "technique", "first_ts", "last_ts", "count", "evidence", "details",
           "status", "close_reason", "status_at", "status_note", "reopened", "status_by")
_LATER = {"status_by": ""}
"""Columns added by later migrations, with the value a reader sees in a database made before them
(readers open read-only and never migrate)."""


@migrations()
def m0001_alerts(db: Database) -> None:
    db["alerts"].create(
        {
            "id": str,             # model.alert_id(rule, key): stable across runs
            "rule": str,           # catalogue rule id
            "severity": str,       # model.SEVERITIES (the highest seen)
            "category": str,
            "message": str,        # the first occurrence's message (wire strings as received)
            "src": str, "dst": str, "src_asset": str, "dst_asset": str, "src_zone": str, "dst_zone": str,
            "protocol": str, "port": int,
            "technique": str,      # ATT&CK for ICS id or ""
            "first_ts": float, "last_ts": float,   # packet time
            "count": int,          # occurrences over every run
            "evidence": str,       # JSON [[source, frame, ts, flow_id], ...] bounded by MAX_EVIDENCE
            "details": str,        # JSON object
            "status": str,         # open | acknowledged | closed
            "close_reason": str,   # resolved | accepted when closed
            "status_at": str,      # wall-clock time of the last operator action (ISO 8601 UTC), "" if none
            "status_note": str,    # the operator's note with it
            "reopened": int,       # times a resolved alert fired again
        },
        pk="id",
    )
    db["alerts"].create_index(["last_ts"])
    db["alerts"].create_index(["status"])
    db["alerts"].create_index(["rule"])


@migrations()
def m0002_status_by(db: Database) -> None:
    db["alerts"].add_column("status_by", str, not_null_default="")   # who made the last status change


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ev_list(evs: Iterable[Evidence]) -> list[list]:
    return [[e.source, e.frame, e.ts, e.flow_id] for e in evs]


def merge_evidence(old: list, new: list, limit: int = MAX_EVIDENCE) -> list:
    """The first ``limit - 1`` distinct pointers of old + new, and the latest one last (as model.add_occurrence)."""
    seen, out = set(), []
    for e in list(old) + list(new):
        k = (e[0], e[1])
        if k not in seen:
            seen.add(k)
            out.append(list(e))
    if len(out) <= limit:
        return out
    latest = max(out, key=lambda e: (e[2], e[1]))
    head = [e for e in out if e is not latest][:limit - 1]
    return head + [latest]


def default_path() -> str:
    from ..store import default_path as shared_default

    return shared_default()


def connect(path: str | None = None, create: bool = True, readonly: bool = False) -> Database:
    """The shared database at *path* (default location when None) with the alerts table.

    *readonly*: opened ``mode=ro`` (never created or migrated; ``FileNotFoundError`` when missing);
    not *create*: an existing database opened for writing (``FileNotFoundError`` when missing).
    Other problems raise ``sensor.store.StoreError`` with one line for the user.
    """
    p = path or default_path()
    if readonly:
        try:
            return open_read(p)
        except NoDatabase:
            raise FileNotFoundError(p) from None
    if not create and p != ":memory:" and not os.path.exists(p):
        raise FileNotFoundError(p)
    return open_write(p, sets=(migrations,))


def open_store(path: str | None = None) -> "AlertStore":
    return AlertStore(connect(path))


def has_alerts_table(db: Database) -> bool:
    return "alerts" in db.table_names()


log = logging.getLogger("otwatch.alerts")

MAX_HELD_CHANGES = 20_000
"""Alert changes kept while another process holds the database (``hold_when_busy``); past it the oldest
are dropped and counted (``held.dropped``).  The outbox feed keeps its own copy (``sinks.pending``)."""


class AlertStore:
    def __init__(self, db: Database):
        self.db = db
        migrate(db, (migrations,))          # a database opened before this module registered its set
        self.counts = {"inserted": 0, "updated": 0, "reopened": 0, "writes": 0, "held": 0, "held.dropped": 0}
        self.write_wait: float | None = None
        """Seconds a write waits for another process's lock (None: ``sensor.store.lock_wait()``)."""
        self.hold_when_busy = False
        """The live sensor: changes the lock refuses are kept (bounded) and written with the next ones."""
        self.held: list[AlertChange] = []

    # -- writer (AlertBook listener) -------------------------------------------
    def __call__(self, changes: list[AlertChange]) -> None:
        self.write(changes)

    def write(self, changes: list[AlertChange]) -> None:
        if self.held:
            changes = self.held + list(changes)
        if not changes:
            return
        entered = False
        try:
            with write_transaction(self.db, self.write_wait):
                entered = True
                self._write(changes)
        except DatabaseBusy as exc:
            if entered or not self.hold_when_busy:
                raise
            if not self.held:
                log.warning("alerts not stored yet, kept in memory: %s", exc)
            self.counts["held"] += 1
            over = len(changes) - MAX_HELD_CHANGES
            if over > 0:
                changes = changes[over:]
                self.counts["held.dropped"] += over
            self.held = list(changes)
            return
        if self.held:
            log.info("alerts stored again (%d changes that waited, %d dropped)", len(self.held),
                     self.counts["held.dropped"])
            self.held = []
        self.counts["writes"] += 1

    def flush_held(self) -> None:
        """Write the changes held while the database was busy, waiting the full ``lock_wait()`` (at the end)."""
        hold, wait = self.hold_when_busy, self.write_wait
        self.hold_when_busy, self.write_wait = False, None
        try:
            self.write([])
        finally:
            self.hold_when_busy, self.write_wait = hold, wait

    def _write(self, changes: list[AlertChange]) -> None:
        conn = self.db.conn
        for ch in changes:
            a = ch.alert
            row = conn.execute("SELECT severity, first_ts, last_ts, count, evidence, details, status, "
                               "close_reason, reopened FROM alerts WHERE id = ?", (a.id,)).fetchone()
            if row is None:
                conn.execute(f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                             (a.id, a.rule, a.severity, a.category, a.message, a.src, a.dst, a.src_asset,
                              a.dst_asset, a.src_zone, a.dst_zone, a.protocol, a.port, a.technique, a.first_ts,
                              a.last_ts, ch.delta, json.dumps(_ev_list(a.evidence)), _dumps(a.details), "open",
                              "", "", "", 0, ""))
                self.counts["inserted"] += 1
                continue
            sev, first_ts, last_ts, count, evidence, details, status, reason, reopened = row
            if severity_rank(a.severity) > severity_rank(sev):
                sev = a.severity
            ev = merge_evidence(_loads(evidence, []), _ev_list(a.evidence))
            det = _loads(details, {})
            det.update(a.details)
            if status == "closed" and reason == "resolved":
                status, reason, reopened = "open", "", (reopened or 0) + 1
                self.counts["reopened"] += 1
            conn.execute("UPDATE alerts SET severity = ?, first_ts = ?, last_ts = ?, count = ?, evidence = ?, "
                         "details = ?, status = ?, close_reason = ?, reopened = ? WHERE id = ?",
                         (sev, min(first_ts, a.first_ts), max(last_ts, a.last_ts), (count or 0) + ch.delta,
                          json.dumps(ev), _dumps(det), status, reason, reopened, a.id))
            self.counts["updated"] += 1

    # -- lifecycle ---------------------------------------------------------------
    def _set_status(self, aid: str, status: str, reason: str, note: str, allowed_from: tuple[str, ...],
                    by: str | None) -> dict:
        with write_transaction(self.db):
            row = self.db.conn.execute("SELECT status FROM alerts WHERE id = ?", (aid,)).fetchone()
            if row is None:
                raise KeyError(aid)
            if row[0] not in allowed_from:
                raise ValueError(f"alert {aid} is {row[0]}")
            self.db.conn.execute("UPDATE alerts SET status = ?, close_reason = ?, status_at = ?, status_note = ?, "
                                 "status_by = ? WHERE id = ?",
                                 (status, reason, _now(), note, (operator() if by is None else str(by))[:MAX_OPERATOR], aid))
        return self.get(aid)

    def ack(self, aid: str, note: str = "", by: str | None = None) -> dict:
        """open → acknowledged (ValueError when not open, KeyError when unknown).  *by*: who (default
        ``operator()``)."""
        return self._set_status(aid, "acknowledged", "", note, ("open",), by)

    def close(self, aid: str, reason: str = "resolved", note: str = "", by: str | None = None) -> dict:
        """open | acknowledged → closed (resolved or accepted)."""
        if reason not in CLOSE_REASONS:
            raise ValueError(f"reason must be one of {', '.join(CLOSE_REASONS)}")
        return self._set_status(aid, "closed", reason, note, ("open", "acknowledged"), by)

    def reopen(self, aid: str, note: str = "", by: str | None = None) -> dict:
        return self._set_status(aid, "open", "", note, ("closed", "acknowledged"), by)

    # -- readers -------------------------------------------------------------------
    def get(self, aid: str) -> dict | None:
        return get(self.db, aid)

    def query(self, **kw) -> list[dict]:
        return query(self.db, **kw)

    def close_db(self) -> None:
        self.db.close()


MAX_OPERATOR = 64
"""Characters of an operator name kept (a login name; ``--by`` text is the user's own)."""


def operator() -> str:
    """Who is acting: the login name of the process (``getpass.getuser``), "" when there is none."""
    import getpass

    try:
        return getpass.getuser()[:MAX_OPERATOR]
    except Exception:       # no USER/LOGNAME and no passwd entry (a container): unknown, not an error
        return ""


def _dumps(v) -> str:
    return json.dumps(v, ensure_ascii=True, separators=(",", ":"), default=str)


def _loads(s, default):
    try:
        v = json.loads(s) if s else default
    except (TypeError, ValueError):
        return default
    return v if isinstance(v, type(default)) else default


def _columns(db: Database) -> list[str]:
    """COLUMNS present in this database (an older one, opened read-only, lacks the later ones)."""
    have = {r[1] for r in db.conn.execute("PRAGMA table_info(alerts)")}
    return [c for c in COLUMNS if c in have]


def _row(r: sqlite3.Row | tuple, cols: list[str]) -> dict:
    d = dict(_LATER)
    d.update(zip(cols, r))
    d["evidence"] = _loads(d.get("evidence"), [])
    d["details"] = _loads(d.get("details"), {})
    return d


def get(db: Database, aid: str) -> dict | None:
    """One alert by id, or by a unique id prefix (at least 6 characters)."""
    if not has_alerts_table(db):
        return None
    cols = _columns(db)
    cur = db.conn.execute(f"SELECT {', '.join(cols)} FROM alerts WHERE id = ?", (aid,))
    r = cur.fetchone()
    if r is None and len(aid) >= 6 and all(c in "0123456789abcdef" for c in aid):
        rows = db.conn.execute(f"SELECT {', '.join(cols)} FROM alerts WHERE id LIKE ? LIMIT 2",
                               (aid + "%",)).fetchall()
        r = rows[0] if len(rows) == 1 else None
    return _row(r, cols) if r is not None else None


def query(db: Database, min_severity: str | None = None, since: float | None = None,
          statuses: Iterable[str] | None = ("open", "acknowledged"), rule: str | None = None,
          limit: int | None = None) -> list[dict]:
    """Alerts, most severe and most recent first."""
    if not has_alerts_table(db):
        return []
    where, params = [], []
    if min_severity:
        allowed = SEVERITIES[severity_rank(min_severity):]
        where.append(f"severity IN ({', '.join('?' * len(allowed))})")
        params += list(allowed)
    if since is not None:
        where.append("last_ts >= ?")
        params.append(since)
    if statuses:
        st = list(statuses)
        where.append(f"status IN ({', '.join('?' * len(st))})")
        params += st
    if rule:
        where.append("rule = ?")
        params.append(rule)
    cols = _columns(db)
    sql = f"SELECT {', '.join(cols)} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SEVERITIES))
    sql += f" ORDER BY CASE severity {order} ELSE 0 END DESC, last_ts DESC, id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_row(r, cols) for r in db.conn.execute(sql, params)]


def evidence_of(row: dict) -> list[Evidence]:
    return [Evidence(str(e[0]), int(e[1]), float(e[2]), int(e[3]) if len(e) > 3 else 0) for e in row["evidence"]]


def from_row(row: dict) -> Alert:
    """An Alert from a stored row (for sinks that replay the store)."""
    return Alert(row["id"], row["rule"], row["severity"], row["category"], row["message"], row["src"], row["dst"],
                 row["src_asset"], row["dst_asset"], row["src_zone"], row["dst_zone"], row["protocol"],
                 row["port"] or 0, row["technique"], row["first_ts"], row["last_ts"], row["count"],
                 evidence_of(row), row["details"], row["status"], row["close_reason"], False)
