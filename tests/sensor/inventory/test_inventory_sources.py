"""Evidence says where it came from (capture + frame + time), and loopback never merges captures."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from support.capbuild import pcap
from support.minicaps import modbus_exchange

OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
ZERO = "00:00:00:00:00:00"      # what a capture on Linux `lo` carries as MACs


def _otwatch(args, db):
    r = subprocess.run(OTWATCH + args, env=dict(os.environ, OTWATCH_DB=str(db)), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_loopback_of_two_unrelated_captures_is_two_devices(tmp_path):
    a, b = tmp_path / "modbus-test.pcap", tmp_path / "opcua-test.pcap"
    a.write_bytes(pcap(modbus_exchange(ZERO, ZERO, "127.0.0.1", "127.0.0.1", 40001, 1_700_000_000.0)))
    b.write_bytes(pcap(modbus_exchange(ZERO, ZERO, "127.0.0.1", "127.0.0.1", 40002, 1_700_100_000.0, sport=4840)))
    db = tmp_path / "inv.db"
    _otwatch(["analyze", "-q", str(a)], db)
    _otwatch(["analyze", "-q", str(b)], db)
    con = sqlite3.connect(db)
    loop = con.execute("select asset_id, device_class from assets where ip = '127.0.0.1'").fetchall()
    assert len(loop) == 2, loop
    assert not any(cls == "gateway" for _, cls in loop)
    ports = {aid: {port for (port,) in con.execute("select port from services where asset_id = ?", (aid,))}
             for aid, _ in loop}
    assert sorted(map(sorted, ports.values())) == [[502], [4840]]     # each capture's own server
    # the same capture analysed again lands on the same asset (scoped by the capture, not by the run)
    _otwatch(["analyze", "-q", str(a)], db)
    assert con.execute("select count(*) from assets where ip = '127.0.0.1'").fetchone()[0] == 2
    # a plant address seen in both captures is still one device
    shown = _otwatch(["inventory"], db)
    assert "ip:127.0.0.1@modbus-test.pcap#" in shown and "ip:127.0.0.1@opcua-test.pcap#" in shown


def test_every_evidence_pointer_names_its_capture(tmp_path):
    a, b = tmp_path / "first.pcap", tmp_path / "second.pcap"
    m = ("02:00:00:00:00:01", "02:00:00:00:00:02")
    n = ("02:00:00:00:00:03", "02:00:00:00:00:04")
    a.write_bytes(pcap(modbus_exchange(*m, "10.0.0.1", "10.0.0.2", 40001, 1_700_000_000.0)))
    b.write_bytes(pcap(modbus_exchange(*n, "10.0.0.3", "10.0.0.4", 40002, 1_700_000_100.0)))
    db = tmp_path / "inv.db"
    _otwatch(["analyze", "-q", str(a), str(b)], db)          # one run, two sources: frames restart at 1
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    owner = {"mac:" + x: str(a) for x in m} | {"mac:" + x: str(b) for x in n}
    for table in ("addresses", "roles", "services", "findings", "asset_events"):
        rows = con.execute(f"select * from {table}").fetchall()
        assert rows, table
        for r in rows:
            assert r["capture"] == owner[r["asset_id"]], (table, dict(r))
            assert 1 <= r["frame"] <= 4 or (table == "asset_events" and r["frame"] == 0), (table, dict(r))
    for r in con.execute("select * from assets"):
        assert r["first_capture"] == owner[r["asset_id"]] and 1 <= r["first_frame"] <= 4
    for r in con.execute("select * from findings"):
        ev = json.loads(r["evidence"])
        assert ev["source"] == owner[r["asset_id"]] and ev["frame"] == 4 and ev["ts"] > 0
    server2 = "mac:" + n[1]
    shown = _otwatch(["inventory", "show", server2], db)
    assert f"frame 4 of {b}" in shown and str(a) not in shown
    events = [json.loads(x) for x in _otwatch(["inventory", "events", "--format", "json"], db).splitlines()]
    assert {e["capture"] for e in events} == {str(a), str(b)}
