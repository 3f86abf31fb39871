"""Two writers, one inventory: counters add up, first/last seen are min/max, identity facts merge.

Each writer loads the inventory when it opens and writes what it holds in memory; before the merge
(``inventory/merge.py``) the later of two writers that held the same device overwrote the other's counters.
The reference is the same captures written one after the other into one database: running them at the
same time must give the same inventory, row for row (the ``asset_events`` log aside).
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

from otwatch.sensor.inventory.model import PKS
from otwatch.sensor.inventory.store import open_inventory
from otwatch.sensor.pipeline import Pipeline
from support.dbholder import Holder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
ATTACK = ROOT / "pcaps" / "attack-scenarios.pcap"
OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
pytestmark = pytest.mark.skipif(not DEMO.exists() or not ATTACK.exists(), reason="pcaps/ captures missing")

_spec = importlib.util.spec_from_file_location("dbdump", HERE / "dbdump.py")
dbdump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbdump)

def inventory_lines(path) -> list[str]:
    """Every row of the inventory's tables (``model.PKS``), canonically; not the ``asset_events`` log (each
    writer records what was new to it), nor the tables of runs, alerts or migrations."""
    return [line for line in dbdump.dump(str(path), rowid=False)
            if any(line.startswith((f"  {t} ", f"table {t} ")) for t in PKS)]


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


@pytest.mark.parametrize("captures", [[DEMO, DEMO, DEMO], [DEMO, ATTACK, DEMO]], ids=["same-thrice", "overlapping"])
def test_analyze_processes_at_once_add_up(tmp_path, captures):
    """Real ``otwatch analyze`` processes into one --db at once.  A second process holds the write lock
    until every analyze has loaded the inventory and is waiting to write (each says so on stderr:
    ``the database is busy``), so they overlap whatever the machine's speed; then they all write."""
    from otwatch.sensor.store import open_write

    singles = []
    for i, c in enumerate(captures):                       # each capture alone
        one = tmp_path / f"one{i}.db"
        r = subprocess.run(OTWATCH + ["analyze", "-q", "--db", str(one), str(c)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        singles.append(_totals(one))
    seq = tmp_path / "seq.db"                                # all of them, one after the other
    for c in captures:
        r = subprocess.run(OTWATCH + ["analyze", "-q", "--db", str(seq), str(c)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    db = tmp_path / "con.db"
    open_write(str(db)).close()                              # created and migrated: nothing left to wait for
    holder = Holder(db)
    env = dict(os.environ, OTWATCH_DB_NOTICE="0.1", OTWATCH_DB_WAIT="600")
    env.pop("OTWATCH_DB", None)
    procs = []
    try:
        for c in captures:
            procs.append(subprocess.Popen(OTWATCH + ["analyze", "-q", "--db", str(db), str(c)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for p in procs:                 # every one has loaded the inventory and waits for the lock
            line = p.stderr.readline()
            assert "the database is busy" in line, line + p.stderr.read()
    finally:
        holder.release()
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "Traceback" not in err, err
    got = _totals(db)
    for part in ("assets", "peers", "findings"):    # every counter is the sum of the separate runs
        want: dict = {}
        for one in singles:
            for k, v in one[part].items():
                want[k] = want.get(k, 0) + v
        assert got[part] == want, part
    assert inventory_lines(db) == inventory_lines(seq)   # and the whole inventory is as one after the other
