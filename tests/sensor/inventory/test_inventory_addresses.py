"""Inventory address rules: router/gateway vs a host renumbered by DHCP, and IPs per VLAN (with the
m0002_vlan migration).  Observations are built by hand, as the pipeline emits them."""
from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from otwatch.parsers.modbus.events import ModbusRequest
from otwatch.sensor import observations as O
from otwatch.sensor.cli import cli
from otwatch.sensor.inventory import migrations
from otwatch.sensor.inventory.model import GATEWAY_MIN_IPS
from otwatch.sensor.inventory.store import connect, max_concurrent, open_inventory

HOST_MAC, GW_MAC, PLC_MAC, PLC2_MAC, HMI_MAC = ("00:14:22:00:00:31", "00:1b:1b:00:00:01", "00:80:f4:0a:00:0b",
                                                "00:80:f4:0a:00:0c", "00:00:bc:0a:00:15")


def host(mac, ip, ts=1.0, frame=1, how="ip", vlan=0):
    return O.HostSeen(ts, frame, mac, ip, vlan, how)


def traffic(mac, ip, first, last, vlan=0, n=10):
    return O.HostTraffic(mac, ip, vlan, n, 100 * n, n, 100 * n, first, last)


def flow(fid, cip, cmac, sip, smac, ts, vlan=0, port=502):
    return O.FlowStart(ts, fid, fid, "tcp", vlan, cip, 40000 + fid, sip, port, cmac, smac, False, "modbus", fid)


def flow_end(fid, first, last):
    return O.FlowEnd(last, fid, fid, "closed", first, 5, 5, 300, 300, 100, 100, "modbus",
                     ("syn", "synack", "data", "fin_client", "fin_server"), False, 200, 0, 0, 0, 4)


def read_req():
    return ModbusRequest(side=0, transaction_id=1, unit=1, function=3, function_name="x",
                         kind="modbus.read_holding_registers", op="read", table="holding_registers")


def msg(client, server, direction, flow_id, link_id=0, ts=2.0, frame=10):
    return O.Message(ts, frame, "modbus", "modbus.read_holding_registers", "read", "", direction, link_id, flow_id,
                     client, server, 502, read_req(), (1,))


@pytest.fixture
def inv(tmp_path):
    i = open_inventory(str(tmp_path / "inv.db"))
    yield i
    i.db.close()


def rows(inv, table):
    inv.flush()
    return [dict(r) for r in inv.db[table].rows]


def events(inv, typ):
    return [dict(e, detail=json.loads(e["detail"])) for e in rows(inv, "asset_events") if e["type"] == typ]


# ---------------------------------------------------------------------------------------------- gateway
def test_max_concurrent():
    assert max_concurrent([]) == 0
    assert max_concurrent([(0, 10), (11, 20), (21, 30)]) == 1           # successive
    assert max_concurrent([(0, 10), (10, 20), (20, 30)]) == 1           # touching ends do not overlap
    assert max_concurrent([(0, 10), (5, 20), (21, 30)]) == 2
    assert max_concurrent([(0, 10), (5, 20), (6, 7), (30, 31)]) == 3
    assert max_concurrent([(2, 2), (3, 3), (4, 4)]) == 1


def test_three_dhcp_leases_over_time_are_one_host_not_a_gateway(inv):
    """A workstation renumbered twice by DHCP (no ARP in the capture: a trunk SPAN that filters it):
    three IPs behind one MAC, one after the other, all on the local subnet."""
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))                  # ARP shows 10.0.0.0/24 is local
    leases = [("10.0.0.101", 100.0, 160.0), ("10.0.0.117", 200.0, 260.0), ("10.0.0.130", 300.0, 360.0)]
    for i, (ip, first, last) in enumerate(leases):
        inv.observe(host(HOST_MAC, ip, ts=first, frame=100 * (i + 1)))
        inv.observe(flow(i + 1, ip, HOST_MAC, "10.0.0.5", PLC_MAC, first + 1))
        inv.observe(msg(ip, "10.0.0.5", "request", i + 1, ts=first + 1, frame=100 * (i + 1) + 1))
        inv.observe(flow_end(i + 1, first + 1, last - 1))
        inv.observe(traffic(HOST_MAC, ip, first, last))
        # a stale ARP cache: a peer still sends to the old lease for a while after the renewal
        if i:
            prev = leases[i - 1][0]
            inv.observe(traffic(HOST_MAC, prev, leases[i - 1][1], first + 20))
    assets = {a["asset_id"]: a for a in rows(inv, "assets")}
    h = assets["mac:" + HOST_MAC]
    assert h["gateway"] == 0 and h["device_class"] != "gateway"
    assert h["ip"] == "10.0.0.130"
    assert not [a for a in assets if a.startswith("ip:")]
    ips = sorted(r["value"] for r in rows(inv, "addresses") if r["asset_id"] == h["asset_id"] and r["type"] == "ip")
    assert ips == sorted(ip for ip, _, _ in leases)
    moves = events(inv, "address.new")
    assert [(e["detail"]["previous"], e["detail"]["ip"]) for e in moves] == [
        ("10.0.0.101", "10.0.0.117"), ("10.0.0.117", "10.0.0.130")]
    assert not events(inv, "asset.gateway")
    roles = {(r["asset_id"], r["role"]) for r in rows(inv, "roles")}
    assert ("mac:" + HOST_MAC, "modbus.client") in roles


def test_router_with_concurrent_ips_is_a_gateway_even_without_arp(inv):
    """No ARP at all (so no subnet evidence): three remote IPs behind one MAC talk at the same time."""
    remote = [f"192.168.7.{i}" for i in range(1, GATEWAY_MIN_IPS + 1)]
    for i, ip in enumerate(remote):
        inv.observe(host(GW_MAC, ip, ts=10.0 + i, frame=10 + i))
        inv.observe(flow(i + 1, ip, GW_MAC, "10.0.0.5", PLC_MAC, 10.0 + i))
        inv.observe(msg(ip, "10.0.0.5", "request", i + 1, ts=10.5 + i, frame=20 + i))
    assert not events(inv, "asset.gateway")              # only starts seen so far: no overlap yet
    for i, ip in enumerate(remote):
        inv.observe(flow_end(i + 1, 10.0 + i, 60.0))       # all three were active until t=60
    (ev,) = events(inv, "asset.gateway")
    assert ev["detail"]["count"] == GATEWAY_MIN_IPS and "at the same time" in ev["detail"]["reason"]
    assets = {a["asset_id"]: a for a in rows(inv, "assets")}
    gw = assets["mac:" + GW_MAC]
    assert gw["gateway"] == 1 and gw["device_class"] == "gateway" and "at the same time" in gw["class_reason"]
    for ip in remote:
        assert assets["ip:" + ip]["via"] == gw["asset_id"]
    roles = {(r["asset_id"], r["role"]) for r in rows(inv, "roles")}
    assert ("ip:" + remote[0], "modbus.client") in roles and ("mac:" + GW_MAC, "modbus.client") not in roles


def test_router_with_off_link_ips_is_a_gateway_at_once(inv):
    inv.observe(host(GW_MAC, "10.0.0.1", how="arp"))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp"))
    for i in range(GATEWAY_MIN_IPS):                     # one packet each, one after the other
        inv.observe(host(GW_MAC, f"172.16.9.{i + 1}", ts=2.0 + i, frame=20 + i))
    (ev,) = events(inv, "asset.gateway")
    assert "off-link" in ev["detail"]["reason"] and "172.16.9.1" in ev["detail"]["reason"]
    gw = next(a for a in rows(inv, "assets") if a["asset_id"] == "mac:" + GW_MAC)
    assert gw["ip"] == "10.0.0.1" and gw["gateway"] == 1


def test_dhcp_host_moving_on_link_with_arp_evidence_stays_one_host(inv):
    """With ARP on the segment, successive on-link leases are not off-link evidence."""
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    for i, ip in enumerate(("10.0.0.50", "10.0.0.51", "10.0.0.52", "10.0.0.53")):
        inv.observe(host(HOST_MAC, ip, ts=100.0 * (i + 1)))
        inv.observe(traffic(HOST_MAC, ip, 100.0 * (i + 1), 100.0 * (i + 1) + 50))
    assert not events(inv, "asset.gateway")
    assert len(events(inv, "address.new")) == 3


def test_gateway_decision_survives_a_reload(tmp_path):
    p = str(tmp_path / "g.db")
    a = open_inventory(p)
    a.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    a.observe(host(HOST_MAC, "10.0.0.101", ts=100.0))
    a.observe(traffic(HOST_MAC, "10.0.0.101", 100.0, 150.0))
    a.observe(host(HOST_MAC, "10.0.0.117", ts=200.0))
    a.observe(traffic(HOST_MAC, "10.0.0.117", 200.0, 250.0))
    a.close()
    b = open_inventory(p)                                 # spans come back from the addresses rows
    b.observe(host(HOST_MAC, "10.0.0.130", ts=300.0))
    b.observe(traffic(HOST_MAC, "10.0.0.130", 300.0, 350.0))
    b.flush()
    assert not [e for e in b.db["asset_events"].rows if e["type"] == "asset.gateway"]
    b.observe(traffic(HOST_MAC, "10.0.0.101", 100.0, 400.0))   # all three active at once after all
    b.observe(traffic(HOST_MAC, "10.0.0.117", 200.0, 400.0))
    b.flush()
    assert [e for e in b.db["asset_events"].rows if e["type"] == "asset.gateway"]
    b.close()


# ---------------------------------------------------------------------------------------------- VLANs
def test_same_ip_on_two_vlans_is_two_devices(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp", vlan=10))
    inv.observe(host(PLC2_MAC, "10.0.0.5", how="arp", vlan=20, ts=2.0, frame=2))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp", vlan=10))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp", vlan=20))        # the HMI is on a trunk
    assert not events(inv, "address.moved")
    # a flow and its message on VLAN 20 reach the VLAN 20 PLC, not the last one to claim 10.0.0.5
    inv.observe(O.LinkSeen(3.0, 3, 7, "modbus", 20, "10.0.0.21", "10.0.0.5", 502))
    inv.observe(flow(5, "10.0.0.21", HMI_MAC, "10.0.0.5", PLC2_MAC, 3.0, vlan=20))
    inv.observe(msg("10.0.0.21", "10.0.0.5", "response", 5, link_id=7, ts=3.5, frame=35))
    inv.observe(O.LinkSeen(4.0, 4, 8, "modbus", 10, "10.0.0.21", "10.0.0.5", 502))
    inv.observe(flow(6, "10.0.0.21", HMI_MAC, "10.0.0.5", PLC_MAC, 4.0, vlan=10))
    inv.observe(msg("10.0.0.21", "10.0.0.5", "request", 6, link_id=8, ts=4.5, frame=45))
    inv.observe(flow_end(6, 4.0, 4.9))
    inv.observe(msg("10.0.0.21", "10.0.0.5", "request", 6, link_id=8, ts=5.0, frame=50))  # flow gone: link's VLAN
    assets = {a["asset_id"]: a for a in rows(inv, "assets")}
    assert set(assets) == {"mac:" + PLC_MAC, "mac:" + PLC2_MAC, "mac:" + HMI_MAC}
    assert (assets["mac:" + PLC_MAC]["vlan"], assets["mac:" + PLC2_MAC]["vlan"]) == (10, 20)
    roles = {(r["asset_id"], r["role"]): r for r in rows(inv, "roles")}
    assert "frame 35" in roles[("mac:" + PLC2_MAC, "modbus.server")]["reason"]
    assert "frame 45" in roles[("mac:" + PLC_MAC, "modbus.server")]["reason"]
    addr = {(r["asset_id"], r["type"], r["value"], r["vlan"]) for r in rows(inv, "addresses")}
    assert ("mac:" + PLC_MAC, "ip", "10.0.0.5", 10) in addr and ("mac:" + PLC2_MAC, "ip", "10.0.0.5", 20) in addr
    assert ("mac:" + HMI_MAC, "ip", "10.0.0.21", 10) in addr and ("mac:" + HMI_MAC, "ip", "10.0.0.21", 20) in addr


def test_ip_only_devices_are_split_per_vlan_and_names_without_vlan_are_not_guessed(inv):
    inv.observe(host("", "10.9.0.7", vlan=30))
    inv.observe(host("", "10.9.0.7", vlan=40))
    inv.observe(host("", "10.9.0.8", vlan=30))
    inv.observe(O.NameSeen(5.0, 5, "twin.plant.local", "10.9.0.7", "", "dns"))   # which one? neither
    inv.observe(O.NameSeen(5.0, 6, "solo.plant.local", "10.9.0.8", "", "dns"))   # only one VLAN has it
    ids = {a["asset_id"]: a for a in rows(inv, "assets")}
    assert set(ids) == {"ip:10.9.0.7@vlan30", "ip:10.9.0.7@vlan40", "ip:10.9.0.8@vlan30"}
    names = {(r["asset_id"], r["name"]) for r in rows(inv, "names")}
    assert names == {("ip:10.9.0.8@vlan30", "solo.plant.local")}


def test_same_ip_moving_between_macs_on_one_vlan_is_still_a_move(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp", vlan=10))
    inv.observe(host(PLC2_MAC, "10.0.0.5", how="arp", vlan=10, ts=2.0, frame=2))
    (mv,) = events(inv, "address.moved")
    assert mv["detail"] == {"ip": "10.0.0.5", "old_asset": "mac:" + PLC_MAC, "vlan": 10}


def test_cli_shows_and_resolves_ip_per_vlan(tmp_path):
    p = str(tmp_path / "v.db")
    inv = open_inventory(p)
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp", vlan=10))
    inv.observe(host(PLC2_MAC, "10.0.0.5", how="arp", vlan=20))
    inv.close()
    r = CliRunner()
    out = r.invoke(cli, ["inventory", "show", "10.0.0.5", "--db", p])
    assert out.exit_code != 0 and "matches several assets" in out.output
    out = r.invoke(cli, ["inventory", "show", "10.0.0.5@vlan20", "--db", p])
    assert out.exit_code == 0 and "mac:" + PLC2_MAC in out.output and "vlan 20" in out.output
    out = r.invoke(cli, ["inventory", "--db", p])
    assert "10.0.0.5@vlan10" in out.output and "10.0.0.5@vlan20" in out.output


def test_migration_m0002_backfills_vlans(tmp_path):
    path = str(tmp_path / "old.db")
    from sqlite_utils import Database

    db = Database(path)
    migrations.migrations.apply(db, stop_before="m0002_vlan")     # an inventory written before m0002
    base = {"anchor": "mac", "vendor": "", "via": "", "zone": "", "device_class": "plc", "class_confidence": 0.9,
            "class_reason": "", "gateway": 0, "first_seen": 1.0, "last_seen": 2.0, "first_frame": 1,
            "packets_sent": 0, "bytes_sent": 0, "packets_received": 0, "bytes_received": 0, "behaviour": "{}",
            "dropped": "{}"}
    db["assets"].insert_all([dict(base, asset_id="mac:a", mac="a", ip="10.0.0.5"),
                             dict(base, asset_id="mac:b", mac="b", ip="10.0.0.6")])
    addr = {"how": "ip", "first_seen": 1.0, "last_seen": 2.0, "frame": 1}
    db["addresses"].insert_all([
        dict(addr, asset_id="mac:a", type="ip", value="10.0.0.5", ip="10.0.0.5"),
        dict(addr, asset_id="mac:a", type="vlan", value="10", ip="10.0.0.5"),      # a: one VLAN
        dict(addr, asset_id="mac:b", type="ip", value="10.0.0.6", ip="10.0.0.6"),
        dict(addr, asset_id="mac:b", type="vlan", value="10", ip="10.0.0.6"),      # b: two VLANs
        dict(addr, asset_id="mac:b", type="vlan", value="20", ip="10.0.0.6"),
    ])
    db.close()
    db = connect(path)                                           # applies m0002
    assert [m.name for m in migrations.migrations.applied(db)][:2] == ["m0001_inventory", "m0002_vlan"]
    got = {(r["asset_id"], r["type"], r["value"]): r["vlan"] for r in db["addresses"].rows}
    assert got == {("mac:a", "ip", "10.0.0.5"): 10, ("mac:a", "vlan", "10"): 10,
                   ("mac:b", "ip", "10.0.0.6"): 0, ("mac:b", "vlan", "10"): 10, ("mac:b", "vlan", "20"): 20}
    assert {r["asset_id"]: r["vlan"] for r in db["assets"].rows} == {"mac:a": 10, "mac:b": 0}
    assert db["addresses"].pks == ["asset_id", "type", "value", "vlan"]
    db.close()
    # the store opens it and keeps going: the same IP on a new VLAN is another row, not a move
    inv = open_inventory(path)
    inv.observe(host("a", "10.0.0.5", how="arp", vlan=10))
    inv.close()
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from addresses where asset_id='mac:a' and type='ip'").fetchone()[0] == 1
    con.close()


_MACS = (GW_MAC, HOST_MAC)
_IPS = [f"10.0.0.{i}" for i in range(1, 7)] + [f"10.9.{i}.5" for i in range(1, 5)] + ["10.0.1.7"]


def _gateway_ops():
    from hypothesis import strategies as st
    seen = st.builds(host, st.sampled_from(_MACS), st.sampled_from(_IPS), st.integers(1, 40).map(float),
                     st.just(1), st.sampled_from(["ip", "ip", "arp"]))
    busy = st.builds(lambda mac, ip, a, d: traffic(mac, ip, float(a), float(a + d)), st.sampled_from(_MACS),
                     st.sampled_from(_IPS), st.integers(1, 40), st.integers(0, 15))
    return st.lists(st.one_of(seen, busy), max_size=40)


def test_gateway_check_decides_as_the_full_read():
    """``_gateway_check`` reads a MAC's claims again only where the changed claim can matter; the
    decisions (gateway events, asset rows) equal those of reading all claims at every change."""
    import tempfile

    from hypothesis import given, settings

    def run(ops, d, full):
        i = open_inventory(f"{d}/{'full' if full else 'inc'}.db")
        if full:
            i._gateway_check = lambda mac, claims, key, c: i._gateway_evidence(claims)
        for o in ops:
            i.note(o)
        out = (rows(i, "assets"), [(e["type"], e["asset_id"], e["detail"]) for e in rows(i, "asset_events")])
        i.db.close()
        return out

    gateways = []

    @settings(max_examples=300, deadline=None)
    @given(_gateway_ops())
    def check(ops):
        with tempfile.TemporaryDirectory() as d:
            inc = run(ops, d, False)
            assert inc == run(ops, d, True)
            gateways.append(any(t == "asset.gateway" for t, _, _ in inc[1]))

    check()
    assert sum(gateways) >= 10        # the examples reach the decision, not only the quiet cases
