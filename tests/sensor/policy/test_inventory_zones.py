"""`otwatch analyze --policy` gives the inventory the policy checker's zones: the assets' `zone` column and
the `modbus.cross_zone` posture finding agree with the zones the checker puts in its alerts — on the demo
plant, whose policy zones plc2 by its MAC only (an address-only lookup would leave it unzoned)."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from otwatch.sensor.cli import cli
from otwatch.sensor.inventory.store import connect
from otwatch.sensor.policy import load_policy
from otwatch.sensor.policy.zones import ZoneMap

ROOT = Path(__file__).resolve().parents[3]
PCAP = ROOT / "pcaps" / "demo-plant.pcap"
POLICY = ROOT / "rules" / "demo-plant.yaml"
PLC2 = "10.10.0.12"


def analyze(tmp_path, *extra):
    db = tmp_path / "inv.db"
    r = CliRunner().invoke(cli, ["analyze", str(PCAP), "-q", "--db", str(db), *extra])
    assert r.exit_code == 0, r.output
    d = connect(str(db))
    try:
        assets = list(d["assets"].rows)
        cross = {r["subject"] for r in d["findings"].rows_where("finding = ?", ["modbus.cross_zone"])}
        alerts = list(d["alerts"].rows_where("rule LIKE 'policy.%'")) if "alerts" in d.table_names() else []
    finally:
        d.close()
    return assets, cross, alerts


@pytest.fixture(scope="module")
def with_policy(tmp_path_factory):
    return analyze(tmp_path_factory.mktemp("zones"), "--policy", str(POLICY))


def test_zone_column_is_the_checkers_zone(with_policy):
    assets, _, _ = with_policy
    zm = ZoneMap(load_policy(POLICY))
    by_ip = {a["ip"]: a for a in assets if a["ip"]}
    for a in assets:
        want = zm.zone_of(a["ip"] or "", a["mac"] or "", a["vlan"] or 0, a["asset_id"]) or ""
        assert a["zone"] == want, a["asset_id"]
    assert by_ip["10.10.0.11"]["zone"] == "control" and by_ip["10.10.0.21"]["zone"] == "supervisory"
    assert by_ip[PLC2]["zone"] == "control"             # by its MAC, as the checker sees it
    assert zm.zone_of(PLC2) is None                     # the address alone would not say so
    assert by_ip["10.10.0.66"]["zone"] == ""            # the rogue: unzoned


def test_alerts_and_inventory_name_the_same_zones(with_policy):
    assets, _, alerts = with_policy
    zone = {a["ip"]: a["zone"] or "unzoned" for a in assets if a["ip"]}
    assert alerts
    for al in alerts:
        for ip, z in ((al["src"], al["src_zone"]), (al["dst"], al["dst_zone"])):
            if ip in zone and z:
                assert zone[ip] == z, (al["rule"], ip)


def test_cross_zone_hook_uses_the_policy(with_policy, tmp_path):
    _, cross, _ = with_policy
    # the rogue (unzoned), the HMI and the EWS reach PLCs of another zone (the hook knows zones, not conduits)
    assert cross == {"10.10.0.66", "10.10.0.21", "10.10.0.31"}
    assets, cross, _ = analyze(tmp_path)                # no policy: no zones, no cross-zone finding
    assert cross == set() and {a["zone"] for a in assets} == {""}
