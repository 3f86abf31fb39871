"""A sensor killed mid-run (SIGKILL) leaves a consistent inventory that later runs merge into."""
from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import struct
import subprocess
import sys
import time

import pytest

from otwatch.sensor.inventory.model import CHILD_TABLES
from otwatch.sensor.inventory.store import open_inventory

PCAP = pathlib.Path(__file__).resolve().parents[3] / "pcaps" / "demo-plant.pcap"
pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="pcaps/demo-plant.pcap missing")
COPIES = 60


def long_capture(path: pathlib.Path, copies: int) -> None:
    """The demo plant played *copies* times in a row (time shifted), as one classic pcap."""
    data = PCAP.read_bytes()
    magic = data[:4]
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[pos:pos + 16])
        records.append((sec, frac, data[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    span = records[-1][0] - records[0][0] + 2
    with open(path, "wb") as f:
        f.write(data[:24])
        for n in range(copies):
            for sec, frac, body, orig in records:
                f.write(struct.pack(e + "IIII", sec + n * span, frac, len(body), orig) + body)


def check_consistent(db_path: str) -> int:
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        for t in CHILD_TABLES:
            orphans = con.execute(f"select count(*) from [{t}] where asset_id not in (select asset_id from assets)")
            assert orphans.fetchone()[0] == 0, t
        assert con.execute("select count(*) from asset_events where asset_id not in "
                           "(select asset_id from assets)").fetchone()[0] == 0
        assert con.execute("select count(*) from _sqlite_migrations").fetchone()[0] >= 1
        return con.execute("select count(*) from assets").fetchone()[0]
    finally:
        con.close()


def test_sigkill_mid_run_leaves_consistent_db(tmp_path):
    cap = tmp_path / "long.pcap"
    long_capture(cap, COPIES)
    db = tmp_path / "inv.db"
    env = dict(os.environ, OTWATCH_DB=str(tmp_path / "unused.db"))
    proc = subprocess.Popen([sys.executable, "-m", "otwatch.sensor", "analyze", "-q", "--interval", "2",
                             "--db", str(db), str(cap)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    killed = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    n = con.execute("select count(*) from assets").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    n = 0
                if n > 0:
                    time.sleep(0.3)         # let it get into a later batch
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = True
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert killed, "the run finished before it could be killed: make the capture longer"
    assert proc.returncode == -signal.SIGKILL
    n = check_consistent(str(db))
    assert n >= 1
    # the next run merges into what survived and finishes cleanly
    r = subprocess.run([sys.executable, "-m", "otwatch.sensor", "analyze", "-q", "--db", str(db), str(PCAP)],
                       env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert check_consistent(str(db)) == 12
    inv = open_inventory(str(db))
    assert len(inv.assets) == 12
    inv.db.close()
