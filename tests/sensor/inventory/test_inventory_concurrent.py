"""Two writers, one inventory: counters add up, first/last seen are min/max, identity facts merge.

Each writer loads the inventory when it opens and writes what it holds in memory; before the merge
(``inventory/merge.py``) the later of two writers that held the same device overwrote the other's counters.
The reference is the same captures written one after the other into one database: running them at the
same time must give the same inventory, row for row (the ``asset_events`` log and ``runs`` aside).
"""
from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otwatch.sensor.inventory.store import open_inventory
from otwatch.sensor.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
ATTACK = ROOT / "pcaps" / "attack-scenarios.pcap"
OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
pytestmark = pytest.mark.skipif(not DEMO.exists() or not ATTACK.exists(), reason="pcaps/ captures missing")

_spec = importlib.util.spec_from_file_location("dbdump", HERE / "dbdump.py")
dbdump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbdump)

LOGS = ("asset_events", "runs", "_sqlite_migrations")
"""Tables that record what happened (each writer's own events, its run), not the inventory."""


def inventory_lines(path) -> list[str]:
    return [line for line in dbdump.dump(str(path), rowid=False)
            if not any(line.startswith((f"  {t} ", f"table {t} ")) for t in LOGS)]


def _feed(inv, capture) -> None:
    pipe = Pipeline([inv])
    pipe.run_file(str(capture))
    pipe.finish()


def _sequential(db, captures) -> None:
    for c in captures:
        inv = open_inventory(str(db))
        _feed(inv, c)
        inv.close()


def _totals(path) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {"assets": dict(con.execute(
                    "SELECT asset_id, packets_sent + packets_received + bytes_sent + bytes_received FROM assets")),
                "peers": dict(con.execute("SELECT asset_id || ' ' || peer_id || ' ' || protocol || ' ' || direction, "
                                          "messages FROM peers")),
                "findings": dict(con.execute("SELECT asset_id || ' ' || finding || ' ' || subject, count "
                                             "FROM findings"))}
    finally:
        con.close()


@pytest.mark.parametrize("captures", [[DEMO, DEMO], [DEMO, ATTACK, DEMO]], ids=["same-twice", "overlapping"])
def test_two_inventories_open_at_once_equal_one_after_the_other(tmp_path, captures):
    """Deterministic interleaving in one process: every writer loads before any writes, flushes every
    500 observations, then closes in turn."""
    _sequential(tmp_path / "seq.db", captures)
    invs = [open_inventory(str(tmp_path / "con.db"), batch=500) for _ in captures]
    for inv, c in zip(invs, captures):
        _feed(inv, c)
    for inv in invs:
        inv.close()
    assert inventory_lines(tmp_path / "con.db") == inventory_lines(tmp_path / "seq.db")
    assert sum(i.counts["rows.merged"] for i in invs) > 0
