"""Read an otwatch database read-only, for the TUI (a running sensor may be writing it).

``Reader(path)`` opens the database through the shared store's reader
(``sensor.store.open_read``: ``mode=ro``, never creates or migrates anything,
works on read-only media; WAL: readers never block the writer).  A missing
database is ``FileNotFoundError``; one that cannot be read, ``StoreError``.  ``changed()`` is
true when another connection committed since the last call (SQLite's
``PRAGMA data_version``), so an idle database is not re-read.
``snapshot()`` is every inventory row (``inventory.store.load_rows``);
``alerts()`` the open and acknowledged alerts (``alertsrc.read_alerts``);
``heartbeat()`` the newest sensor heartbeat of the outbox (its JSON body plus
``_at``, the wall-clock time it was written), or {}.
"""
from __future__ import annotations

import json
import sqlite3

from ..store import NoDatabase, open_read
from . import alertsrc

BUSY_TIMEOUT_S = 2.0
"""A read waits at most this long for a writer's checkpoint; the UI tick retries later."""


class Reader:
    def __init__(self, path: str):
        try:
            self.db = open_read(path)
        except NoDatabase:
            raise FileNotFoundError(path) from None
        self.path = path
        self.conn = self.db.conn
        self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._version = None

    def changed(self) -> bool:
        v = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if v != self._version:
            self._version = v
            return True
        return False

    def snapshot(self) -> dict:
        from ..inventory.store import load_rows

        return load_rows(self.db)            # one consistent view of every table (read_snapshot)

    def alerts(self) -> list:
        return alertsrc.read_alerts(self.db)

    def heartbeat(self) -> dict:
        try:
            r = self.conn.execute("SELECT body, ts FROM outbox WHERE kind = 'heartbeat' ORDER BY seq DESC LIMIT 1"
                                  ).fetchone()
        except sqlite3.Error:
            return {}
        if r is None:
            return {}
        try:
            body = json.loads(r[0])
        except ValueError:
            return {}
        if not isinstance(body, dict):
            return {}
        body["_at"] = r[1]
        return body

    def close(self) -> None:
        self.conn.close()


__all__ = ["Reader"]
