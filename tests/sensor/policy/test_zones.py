"""Address → zone resolution: precedence, longest prefix, VLANs, MACs, assets, groups, bounded cache."""
from __future__ import annotations

from support.policyhelp import policy

from otwatch.sensor.policy import zones as Z
from otwatch.sensor.policy.model import UNZONED
from otwatch.sensor.policy.zones import ZoneMap

P = """\
version: 1
zones:
  enterprise:
    networks: [10.0.0.0/8, "2001:db8::/32"]
  cell:
    networks: [10.1.0.0/16]
  plc:
    networks: [10.1.2.3/32, "2001:db8::5"]
  byvlan:
    vlans: [20]
  bymac:
    macs: ["02:00:00:00:00:aa"]
  byasset:
    assets: ["ip:10.1.9.9", "ip:10.1.9.8@vlan20", "historian-1", "mac:02:00:00:00:00:bb"]
"""


def zm():
    return ZoneMap(policy(P))


def test_longest_prefix_wins():
    m = zm()
    assert m.zone("10.1.2.3") == "plc"
    assert m.zone("10.1.2.4") == "cell"
    assert m.zone("10.2.0.1") == "enterprise"
    assert m.zone("192.168.1.1") == UNZONED
    assert m.zone("2001:db8::5") == "plc" and m.zone("2001:db8::6") == "enterprise"
    assert m.zone("not an address") == UNZONED


def test_precedence_asset_mac_ip_vlan():
    m = zm()
    assert m.zone("10.1.2.3", mac="02:00:00:00:00:aa") == "bymac"          # MAC before IP
    assert m.zone("192.168.0.1", vlan=20) == "byvlan"                       # VLAN when nothing else claims
    assert m.zone("10.1.2.4", vlan=20) == "cell"                            # IP before VLAN
    assert m.zone("10.1.9.9") == "byasset"                                  # the inventory's own id form
    assert m.zone("10.1.9.8", vlan=20) == "byasset" and m.zone("10.1.9.8") == "cell"
    assert m.zone("10.1.2.3", mac="02:00:00:00:00:bb") == "byasset"         # mac:... asset ids
    assert m.zone("10.1.2.3", mac="02:00:00:00:00:aa", asset="historian-1") == "byasset"   # asset hook first


def test_groups_and_directed_broadcast():
    m = zm()
    assert ZoneMap.is_group("224.0.0.251") and ZoneMap.is_group("255.255.255.255") and ZoneMap.is_group("ff02::1")
    assert not ZoneMap.is_group("10.1.2.3")
    assert m.directed_broadcast("10.1.255.255") == "cell"
    assert m.directed_broadcast("10.1.2.3") is None


def test_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(Z, "CACHE_MAX", 10)
    m = zm()
    for i in range(100):
        assert m.zone(f"10.1.3.{i}") == "cell"
        assert len(m._cache) <= 10


def test_zone_of_is_the_inventory_hook():
    m = zm()
    assert m.zone_of("10.1.2.3") == "plc" and m.zone_of("192.168.1.1") is None


def test_demo_policy_zone_map_drives_the_inventory_cross_zone_hook(tmp_path):
    from pathlib import Path

    from otwatch.sensor.inventory.store import open_inventory
    from otwatch.sensor.pipeline import Pipeline
    from otwatch.sensor.policy import load_policy

    root = Path(__file__).resolve().parents[3]
    zm = ZoneMap(load_policy(root / "rules" / "demo-plant.yaml"))
    path = str(tmp_path / "inv.db")
    inv = open_inventory(path, zone_of=zm.zone_of)
    pipe = Pipeline([inv])
    pipe.run_file(str(root / "pcaps" / "demo-plant.pcap"))
    pipe.finish()
    inv.close()
    inv = open_inventory(path)
    rows = {r["subject"] for r in inv.db["findings"].rows_where("finding = ?", ["modbus.cross_zone"])}
    inv.db.close()
    # the rogue (unzoned) and the HMI and EWS (other zones than the PLCs'): the hook knows zones, not conduits
    assert rows == {"10.10.0.66", "10.10.0.21", "10.10.0.31"}
