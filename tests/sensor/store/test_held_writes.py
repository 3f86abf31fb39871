"""The live sensor's writers while another process holds the database: nothing observed is lost.

The sensor's inventory and alert store (``hold_when_busy``, a short ``write_wait``) keep what the lock
refuses in memory and write it with the next batch; what they keep is bounded (asset events, alert
changes), and what goes over the bound is counted and logged.  A real second process holds the lock;
the reference is the same capture written with nobody in the way.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from otwatch.sensor.alerts import store as S
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.inventory import store as inv_store
from otwatch.sensor.inventory.model import PKS
from otwatch.sensor.inventory.store import open_inventory
from otwatch.sensor.pipeline import Pipeline
from support.dbholder import Holder

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
_spec = importlib.util.spec_from_file_location("dbdump", ROOT / "tests" / "sensor" / "inventory" / "dbdump.py")
dbdump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbdump)
sys.path.insert(0, str(ROOT / "tests" / "sensor"))
from alerts.helpers import f  # noqa: E402

pytestmark = pytest.mark.skipif(not DEMO.exists(), reason="pcaps/demo-plant.pcap missing")

def _lines(path):
    return [line for line in dbdump.dump(str(path), rowid=False)
            if any(line.startswith((f"  {t} ", f"table {t} ")) for t in tuple(PKS) + ("asset_events",))]


def test_inventory_held_in_memory_while_another_process_holds_the_lock(tmp_path, caplog, monkeypatch):
    ref = open_inventory(str(tmp_path / "ref.db"), batch=300)
    pipe = Pipeline([ref])
    pipe.run_file(str(DEMO))
    pipe.finish()
    ref.close()

    monkeypatch.setenv("OTWATCH_DB_NOTICE", "600")     # the sensor logs its own line, not the notice
    inv = open_inventory(str(tmp_path / "held.db"), batch=300)
    inv.write_wait, inv.hold_when_busy = 0.2, True
    caplog.set_level(logging.INFO, logger="otwatch.inventory")
    holder = Holder(tmp_path / "held.db")
    try:
        pipe = Pipeline([inv])
        pipe.run_file(str(DEMO))     # every batch refused: kept in memory
        pipe.finish()
        inv.flush()
        assert inv.counts["flushes.held"] >= 2 and inv.counts["flushes"] == 0
        assert inv.counts["events.dropped"] == 0
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "inventory not written yet, kept in memory" in warned[0], warned
        assert f"held by pid {holder.pid} (" in warned[0]
    finally:
        holder.release()
    inv.flush()                      # the lock is free: everything at once
    assert inv.counts["flushes"] == 1
    assert any("inventory written again after" in r.getMessage() for r in caplog.records)
    inv.close()
    assert _lines(tmp_path / "held.db") == _lines(tmp_path / "ref.db")


def test_held_asset_events_are_bounded_and_the_drop_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(inv_store, "MAX_HELD_EVENTS", 5)
    inv = open_inventory(str(tmp_path / "held.db"), batch=300)
    inv.write_wait, inv.hold_when_busy = 0.2, True
    holder = Holder(tmp_path / "held.db")
    try:
        pipe = Pipeline([inv])
        pipe.run_file(str(DEMO))
        pipe.finish()
        inv.flush()
        dropped = inv.counts["events.dropped"]
        assert dropped > 0 and len(inv._events) == 5
    finally:
        holder.release()
    inv.close()
    ref = open_inventory(str(tmp_path / "ref.db"), batch=300)
    pipe = Pipeline([ref])
    pipe.run_file(str(DEMO))
    pipe.finish()
    ref.close()
    import sqlite3

    n = [sqlite3.connect(p).execute("SELECT count(*) FROM asset_events").fetchone()[0]
         for p in (tmp_path / "held.db", tmp_path / "ref.db")]
    assert n[0] == 5 and n[1] == 5 + dropped      # the rows kept, and exactly what was counted as dropped
    held = [sqlite3.connect(p).execute("SELECT sum(packets_sent) FROM assets").fetchone()[0]
            for p in (tmp_path / "held.db", tmp_path / "ref.db")]
    assert held[0] == held[1]                      # the inventory itself lost nothing


def test_alert_changes_held_then_stored(tmp_path, caplog):
    db = tmp_path / "a.db"
    st = S.open_store(str(db))
    st.write_wait, st.hold_when_busy = 0.2, True
    book = AlertBook(listeners=[st])
    caplog.set_level(logging.INFO, logger="otwatch.alerts")
    holder = Holder(db)
    try:
        for fr in range(1, 6):
            book.raise_finding(f(key=("10.0.0.66", "10.0.0.11"), frame=fr))
            book.flush()             # refused each time: held
        assert st.counts["held"] == 5 and st.counts["writes"] == 0
        assert sum("alerts not stored yet" in r.getMessage() for r in caplog.records) == 1
    finally:
        holder.release()
    book.raise_finding(f(key=("10.0.0.66", "10.0.0.11"), frame=6))
    book.flush()
    assert st.counts["writes"] == 1 and not st.held
    (row,) = st.query()
    assert row["count"] == 6
