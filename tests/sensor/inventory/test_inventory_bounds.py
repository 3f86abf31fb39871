"""The inventory's address-ownership map is bounded (store.Inventory._unrowed, model.MAX_UNROWED_IPS).

A SYN flood of spoofed sources behind a router's MAC binds every reported source to the MAC's asset, whose
address rows stop at MAX_ADDRESSES: nothing else bounded those bindings (~1,024 a minute of flood).  Past the
cap the oldest bindings without a row go, counted, and the database is the same as without the cap.
"""
from __future__ import annotations

from otwatch.sensor import observations as O
from otwatch.sensor.inventory import store
from otwatch.sensor.inventory.model import MAX_ADDRESSES
from otwatch.sensor.inventory.store import open_inventory

from .dbdump import dump

ROUTER = "00:1b:1b:00:00:01"
PLC = "00:80:f4:0a:00:0b"
SOURCES = 1000


def _flood(path: str) -> store.Inventory:
    inv = open_inventory(path)
    inv.observe(O.HostSeen(0.5, 1, PLC, "10.10.1.11", 0, "ip"))
    for i in range(SOURCES):             # one source every second, each seen once: never three at a time
        ts = 1.0 + i
        src = f"10.128.{i // 250}.{i % 250 + 1}"
        inv.observe(O.HostSeen(ts, 2 + 2 * i, ROUTER, src, 0, "ip"))
        inv.observe(O.FlowStart(ts, 2 + 2 * i, i + 1, "tcp", 0, src, 40000, "10.10.1.11", 502, ROUTER, PLC, False,
                                "modbus", 0))
    inv.flush()
    return inv


def test_bindings_without_a_row_are_bounded_and_the_database_is_the_same(tmp_path, monkeypatch):
    full = _flood(str(tmp_path / "full.db"))
    assert len(full.ip_owner) > SOURCES            # every source bound (and the PLC)
    full.close()
    monkeypatch.setattr(store, "MAX_UNROWED_IPS", 100, raising=False)
    capped = _flood(str(tmp_path / "capped.db"))
    assert len(capped.ip_owner) <= MAX_ADDRESSES + 100 + 1
    assert capped.counts["ip_owner.evicted"] >= SOURCES - MAX_ADDRESSES - 100
    capped.close()
    assert dump(str(tmp_path / "capped.db"), rowid=False) == dump(str(tmp_path / "full.db"), rowid=False)
