"""sensor/store/database.py: the connections the store opens."""
from __future__ import annotations

import sqlite_utils.db

from otwatch.sensor.store import open_read, open_write


def test_sqlite_utils_plugins_are_neither_searched_nor_run(tmp_path, monkeypatch):
    """Plugins installed beside otwatch do not change its connections, and finding them (an entry-point
    scan of every installed distribution) is not paid at every start."""
    def refuse(*_a, **_k):
        raise AssertionError("sqlite-utils plugins were loaded")

    monkeypatch.setattr(sqlite_utils.db, "ensure_plugins_loaded", refuse)
    monkeypatch.setattr(sqlite_utils.db.pm.hook, "prepare_connection", refuse)
    path = str(tmp_path / "inv.db")
    db = open_write(path)
    db.conn.execute("CREATE TABLE t (x)")
    db.conn.commit()
    db.close()
    db = open_read(path)
    assert db["t"].exists()
    db.close()
