"""The durable, sequenced outbox (SQLite, WAL) and its per-destination cursors.

Tables (migrations below; docs/sinks.md documents each column)::

    outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, id, kind, severity, sev, ts, body)
    outbox_cursors(dest PRIMARY KEY, seq, delivered, updated)

``seq`` is the delivery order; AUTOINCREMENT so a sequence number is never
reused, even after the rows before it were pruned or dropped.  Each destination
(``"syslog:tcp://collector:6514?format=cef"``, ``"jsonl:/var/log/otwatch.jsonl"``)
has a cursor: the last seq it has *delivered*.  A new destination starts at 0:
it is sent everything still in the outbox.

Writers (the capture side) and readers (one thread per destination, the TUI)
use their own connections: SQLite connections are not shared across threads.
Every connection is the shared database's (``sensor.store.open_write``: WAL,
busy timeout, migrations under one lock); every write is one short
``write_transaction`` (``BEGIN IMMEDIATE``, retried while another writer holds
the lock), so readers (``otwatch alerts``, the TUI) never wait and never see a
half-written batch.

The bound: ``max_records`` undelivered-or-kept rows.  When an append goes past
it, the oldest rows of the lowest severity present are removed first (an
``info`` heartbeat goes before a ``critical`` alert, however old) until
``max_records - headroom`` remain, and one ``loss`` record says how many of each
severity went and which seqs they spanned.  Rows every destination has
delivered are pruned first (``prune``), so only undelivered rows are ever lost.
"""
from __future__ import annotations

import json
import os
import time
from typing import Iterable

from sqlite_utils import Database, Migrations

from ..alerts.model import SEVERITIES, severity_rank
from ..store import NoDatabase, open_write, write_transaction
from .record import Record, loss_body

MAX_RECORDS = 100_000
"""Default bound: ~100 k records is ~50 MB of SQLite at ~500 bytes an alert, a
few days of a noisy plant's alerts with every collector down."""
HEADROOM = 0.01
"""Fraction of the bound freed at once when it is reached, so that a flood does
not run the eviction query on every append."""
LOSS_SEVERITY = "high"
"""A loss record is itself delivered and must not be the next thing dropped."""
CAPTURE_APPEND_WAIT = 2.0
"""Seconds the live sensor's writes (outbox appends, inventory and alert batches) wait for a lock another
process holds: the capture runs in the same thread, and what is refused is held for the next flush
(``sinks.pending``, the inventory's memory, the alert store's pending changes), so waiting longer only
fills the kernel ring."""

migrations = Migrations("otwatch.outbox")
"""Applied by ``open_write(path, sets=(migrations,))`` wherever an ``Outbox`` opens the database (not
registered process-wide: an ``analyze`` that never delivers does not create the outbox tables)."""
_INSERT = "INSERT INTO outbox (id, kind, severity, sev, ts, body) VALUES (?,?,?,?,?,?)"


@migrations()
def m0001_outbox(db: Database) -> None:
    db.execute("""CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        sev INTEGER NOT NULL,
        ts REAL NOT NULL,
        body TEXT NOT NULL)""")
    db.execute("CREATE INDEX outbox_sev ON outbox (sev, seq)")
    db["outbox_cursors"].create({"dest": str, "seq": int, "delivered": int, "updated": float}, pk="dest")


def migrate(path: str) -> None:
    """Create or upgrade the shared database at *path*, outbox tables included (``sensor.store.open_write``:
    safe when several processes start at once)."""
    open_write(path, sets=(migrations,)).close()


class Outbox:
    """One connection's view of the outbox.  Not thread-safe: one per thread.

    The connection is the shared database's (``sensor.store.open_write``: WAL, busy timeout, the
    registered migrations and the outbox's); every write is one short ``write_transaction``.
    *create* False: the database must exist already (a delivery thread; ``StoreError`` if not).
    *append_wait*: seconds an append waits for a lock another process holds before it raises
    ``DatabaseBusy`` (default ``sensor.store.lock_wait()``; the sensor: ``CAPTURE_APPEND_WAIT``).
    """

    def __init__(self, path: str, max_records: int = MAX_RECORDS, create: bool = True,
                 append_wait: float | None = None):
        if not create and path != ":memory:" and not os.path.exists(path):
            raise NoDatabase(f"no database at {path}")
        self.path = path
        self.max_records = max(10, int(max_records))
        self.db = open_write(path, sets=(migrations,))
        self.conn = self.db.conn
        self.dropped = 0          # records this connection's appends removed at the bound
        self.append_wait = append_wait

    def close(self) -> None:
        self.db.close()

    # -- the capture side ---------------------------------------------------
    def append(self, kind: str, rid: str, severity: str, ts: float, body: dict) -> int:
        """Add one record; returns its seq."""
        return self.append_many([(kind, rid, severity, ts, body)])[-1]

    def append_many(self, items: Iterable[tuple]) -> list[int]:
        """Add records ``(kind, id, severity, ts, body)`` in one transaction; returns their seqs."""
        rows = [(rid, kind, severity, severity_rank(severity), float(ts),
                 json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str))
                for kind, rid, severity, ts, body in items]       # encoded before the lock is taken
        seqs = []
        c = self.conn
        with write_transaction(self.db, self.append_wait):
            for row in rows:
                seqs.append(c.execute(_INSERT, row).lastrowid)
            n = c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            if n > self.max_records:
                self._enforce_bound(n)
        return seqs

    def _enforce_bound(self, n: int) -> None:
        c = self.conn
        self._prune_delivered()
        n = c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        target = self.max_records - max(1, int(self.max_records * HEADROOM)) - 1   # room for the loss record
        if n <= self.max_records:
            return
        excess = n - target
        by_sev: dict[str, int] = {}
        first = last = None
        loss_rank = severity_rank(LOSS_SEVERITY)
        while excess > 0:
            row = c.execute("SELECT MIN(sev) FROM outbox WHERE kind != 'loss' OR sev < ?", (loss_rank,)).fetchone()
            if row is None or row[0] is None:
                break
            sev = row[0]
            rows = c.execute("SELECT seq, severity FROM outbox WHERE sev = ? AND kind != 'loss' ORDER BY seq LIMIT ?",
                             (sev, excess)).fetchall()
            if not rows:
                break
            seqs = [r[0] for r in rows]
            c.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            for _, s in rows:
                by_sev[s] = by_sev.get(s, 0) + 1
            lo, hi = min(seqs), max(seqs)
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
            excess -= len(rows)
        dropped = sum(by_sev.values())
        if dropped:
            self.dropped += dropped
            body = loss_body(dropped, by_sev, first, last)
            c.execute(_INSERT, (f"loss:{first}-{last}", "loss", LOSS_SEVERITY, loss_rank, time.time(),
                                json.dumps(body, separators=(",", ":"))))

    def _prune_delivered(self) -> int:
        """Delete rows every registered destination has delivered (none when no destination exists)."""
        c = self.conn
        row = c.execute("SELECT MIN(seq), COUNT(*) FROM outbox_cursors").fetchone()
        if not row or not row[1]:
            return 0
        return c.execute("DELETE FROM outbox WHERE seq <= ?", (row[0],)).rowcount

    def prune(self) -> int:
        """Remove what every destination has delivered; returns how many rows went."""
        with write_transaction(self.db):
            return self._prune_delivered()

    # -- the delivery side --------------------------------------------------
    def register(self, dest: str) -> int:
        """Make sure *dest* has a cursor (new ones start at 0); returns its position."""
        with write_transaction(self.db):
            self.conn.execute("INSERT OR IGNORE INTO outbox_cursors (dest, seq, delivered, updated) "
                              "VALUES (?, 0, 0, ?)", (dest, time.time()))
        return self.cursor(dest)

    def cursor(self, dest: str) -> int:
        row = self.conn.execute("SELECT seq FROM outbox_cursors WHERE dest = ?", (dest,)).fetchone()
        return row[0] if row else 0

    def after(self, seq: int, limit: int = 256) -> list[Record]:
        """Records with a sequence number above *seq*, in order."""
        rows = self.conn.execute("SELECT seq, id, kind, severity, ts, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                 (seq, limit)).fetchall()
        return [Record(s, i, k, sv, ts, json.loads(b)) for s, i, k, sv, ts, b in rows]

    def advance(self, dest: str, seq: int, delivered: int) -> None:
        """Move *dest*'s cursor to *seq* (never backwards) and add *delivered* to its count."""
        with write_transaction(self.db):
            self.conn.execute("UPDATE outbox_cursors SET seq = MAX(seq, ?), delivered = delivered + ?, updated = ? "
                              "WHERE dest = ?", (seq, delivered, time.time(), dest))

    def stats(self) -> dict:
        c = self.conn
        n, hi = c.execute("SELECT COUNT(*), MAX(seq) FROM outbox").fetchone()
        dests = {}
        for d, s, dl in c.execute("SELECT dest, seq, delivered FROM outbox_cursors").fetchall():
            behind = c.execute("SELECT COUNT(*) FROM outbox WHERE seq > ?", (s,)).fetchone()[0]
            dests[d] = {"cursor": s, "delivered": dl, "behind": behind}
        return {"records": n, "last_seq": hi or 0, "dropped": self.dropped, "destinations": dests}


__all__ = ["Outbox", "migrate", "MAX_RECORDS", "SEVERITIES"]
