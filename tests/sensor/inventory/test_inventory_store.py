"""Inventory store, with observations constructed by hand (no capture needed)."""
from __future__ import annotations

import sqlite3

import pytest

from otwatch.parsers.modbus.events import DeviceIdObject, ModbusDeviceIdentification, ModbusRequest
from otwatch.parsers.mqtt.events import MQTTConnAck, MQTTConnect, MQTTPublish, MQTTSubscribe, MQTTSubscription
from otwatch.sensor import observations as O
from otwatch.sensor.inventory import migrations
from otwatch.sensor.inventory.model import EVENT_TYPES, GATEWAY_MIN_IPS, MAX_TOPICS
from otwatch.sensor.inventory.store import Inventory, connect, default_path, open_inventory

PLC_MAC, HMI_MAC, GW_MAC = "00:80:f4:0a:00:0b", "00:00:bc:0a:00:15", "00:1b:1b:00:00:01"


def host(mac, ip, ts=1.0, frame=1, how="ip", vlan=0):
    return O.HostSeen(ts, frame, mac, ip, vlan, how)


def msg(client, server, port, protocol, kind, direction, event, ts=2.0, frame=10, op="read", target="", flow=1):
    return O.Message(ts, frame, protocol, kind, op, target, direction, 1, flow, client, server, port, event, (1,))


def devid(revision, unit=1):
    objs = (DeviceIdObject(0, "VendorName", "Schneider Electric", b""),
            DeviceIdObject(1, "ProductCode", "BMXP342020", b""),
            DeviceIdObject(2, "MajorMinorRevision", revision, b""))
    return ModbusDeviceIdentification(side=1, transaction_id=1, unit=unit, function=43,
                                      function_name="Encapsulated Interface Transport",
                                      kind="modbus.encapsulated_interface_transport", op="diagnostic",
                                      table="device_id", objects=objs)


def read_req(unit=1, fc=3):
    return ModbusRequest(side=0, transaction_id=1, unit=unit, function=fc, function_name="x",
                         kind="modbus.read_holding_registers", op="read", table="holding_registers")


@pytest.fixture
def inv(tmp_path):
    i = open_inventory(str(tmp_path / "inv.db"))
    yield i
    i.db.close()


def rows(inv, table):
    inv.flush()
    return [dict(r) for r in inv.db[table].rows]


def test_migrations_apply_once_and_are_recorded(tmp_path):
    db = connect(str(tmp_path / "x.db"))
    migrations.apply(db)   # idempotent
    assert [m.name for m in migrations.migrations.applied(db)] == ["m0001_inventory", "m0002_vlan", "m0003_capture"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_path_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("OTWATCH_DB", str(tmp_path / "a.db"))
    assert default_path() == str(tmp_path / "a.db")
    monkeypatch.delenv("OTWATCH_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_path() == str(tmp_path / "xdg" / "otwatch" / "inventory.db")


def test_asset_keyed_by_mac_keeps_identity_across_ip_change(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    inv.observe(host(PLC_MAC, "10.0.0.9", ts=5.0, frame=50, how="arp"))
    assets = rows(inv, "assets")
    assert len(assets) == 1 and assets[0]["asset_id"] == "mac:" + PLC_MAC
    assert assets[0]["ip"] == "10.0.0.9"
    assert assets[0]["vendor"]            # IEEE registry via netaddr (Schneider/Telemecanique OUI)
    ips = sorted(r["value"] for r in rows(inv, "addresses") if r["type"] == "ip")
    assert ips == ["10.0.0.5", "10.0.0.9"]
    ev = [e for e in rows(inv, "asset_events") if e["type"] == "address.new"]
    assert len(ev) == 1 and '"previous": "10.0.0.5"' in ev[0]["detail"]


def test_router_mac_with_many_ips_is_a_gateway_and_ips_behind_it_are_assets(inv):
    inv.observe(host(GW_MAC, "10.0.0.1", how="arp"))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp"))
    remote = [f"192.168.7.{i}" for i in range(1, GATEWAY_MIN_IPS + 2)]
    for i, ip in enumerate(remote):
        inv.observe(host(GW_MAC, ip, ts=2 + i, frame=20 + i))
        inv.observe(msg(ip, "10.0.0.21", 502, "modbus", "modbus.read_holding_registers", "request",
                        read_req(), ts=2 + i, frame=30 + i))
    assets = {a["asset_id"]: a for a in rows(inv, "assets")}
    gw = assets["mac:" + GW_MAC]
    assert gw["gateway"] == 1 and gw["device_class"] == "gateway" and gw["ip"] == "10.0.0.1"
    for ip in remote:
        a = assets["ip:" + ip]
        assert a["via"] == gw["asset_id"]
    # the role learnt while an IP was still attributed to the gateway moved with it
    roles = {(r["asset_id"], r["role"]) for r in rows(inv, "roles")}
    assert ("ip:" + remote[0], "modbus.client") in roles
    assert ("mac:" + GW_MAC, "modbus.client") not in roles
    assert any(e["type"] == "asset.gateway" for e in rows(inv, "asset_events"))


def test_ip_only_asset_merges_into_mac_asset(inv):
    inv.observe(host("", "10.0.0.7"))          # raw-IP capture: no MAC
    inv.observe(msg("10.0.0.21", "10.0.0.7", 502, "modbus", "k", "response", devid("v1"), frame=3))
    inv.observe(host(PLC_MAC, "10.0.0.7", ts=9, frame=90, how="arp"))
    assets = rows(inv, "assets")
    ids = {a["asset_id"] for a in assets}
    assert "ip:10.0.0.7" not in ids and "mac:" + PLC_MAC in ids
    ident = {r["attribute"]: r for r in rows(inv, "identity")}
    assert ident["MajorMinorRevision"]["asset_id"] == "mac:" + PLC_MAC


def test_identity_change_is_an_event_with_old_and_new(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp"))
    inv.observe(msg("10.0.0.21", "10.0.0.5", 502, "modbus", "modbus.encapsulated_interface_transport",
                    "response", devid("v3.20"), ts=3, frame=30))
    events = inv.note(msg("10.0.0.21", "10.0.0.5", 502, "modbus", "modbus.encapsulated_interface_transport",
                          "response", devid("v3.30"), ts=7, frame=70))
    changed = [e for e in events if e.type == "identity.changed"]
    assert len(changed) == 1
    assert changed[0].detail["old"] == "v3.20" and changed[0].detail["new"] == "v3.30"
    assert changed[0].frame == 70
    r = next(r for r in rows(inv, "identity") if r["attribute"] == "MajorMinorRevision")
    assert r["value"] == "v3.30" and r["changes"] == 1 and r["source"].endswith("frame 70")
    assert r["last_frame"] == 70
    assert all(e.type in EVENT_TYPES for e in inv.take_events())


def test_roles_units_and_class(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    inv.observe(host(HMI_MAC, "10.0.0.21", how="arp"))
    inv.observe(msg("10.0.0.21", "10.0.0.5", 502, "modbus", "modbus.read_holding_registers", "request",
                    read_req(unit=1)))
    inv.observe(msg("10.0.0.21", "10.0.0.5", 502, "modbus", "modbus.read_holding_registers", "response",
                    read_req(unit=1), frame=11))
    r = {(x["asset_id"], x["role"]): x for x in rows(inv, "roles")}
    srv = r[("mac:" + PLC_MAC, "modbus.server")]
    assert srv["confidence"] >= 0.9 and '"units": [1]' in srv["detail"]
    assert ("mac:" + HMI_MAC, "modbus.client") in r
    cls = {a["asset_id"]: a["device_class"] for a in rows(inv, "assets")}
    assert cls["mac:" + PLC_MAC] == "plc" and cls["mac:" + HMI_MAC] == "hmi/scada"


def test_batched_writes_nothing_before_flush(tmp_path):
    inv = open_inventory(str(tmp_path / "b.db"), batch=1000)
    other = sqlite3.connect(str(tmp_path / "b.db"))
    inv.observe(host(PLC_MAC, "10.0.0.5"))
    assert other.execute("select count(*) from assets").fetchone()[0] == 0
    inv.observe(O.IntervalEnd(0.0, 60.0))                 # an interval end writes the batch
    assert other.execute("select count(*) from assets").fetchone()[0] == 1
    inv.observe(host(HMI_MAC, "10.0.0.21"))
    inv.close()
    assert other.execute("select count(*) from assets").fetchone()[0] == 2
    other.close()


def test_successive_runs_merge(tmp_path):
    p = str(tmp_path / "m.db")
    a = open_inventory(p)
    a.observe(host(PLC_MAC, "10.0.0.5", ts=100.0))
    a.observe(O.HostTraffic(PLC_MAC, "10.0.0.5", 0, 10, 1000, 5, 500, 100.0, 110.0))
    a.close()
    b = open_inventory(p)
    new = b.note(host(PLC_MAC, "10.0.0.5", ts=50.0))
    assert not [e for e in new if e.type == "asset.new"]
    b.observe(O.HostTraffic(PLC_MAC, "10.0.0.5", 0, 1, 100, 0, 0, 50.0, 200.0))
    b.close()
    c = connect(p)
    (row,) = list(c["assets"].rows)
    assert row["first_seen"] == 50.0 and row["last_seen"] == 200.0
    assert row["packets_sent"] == 11 and row["bytes_sent"] == 1100


def test_mqtt_identity_topics_caps_and_no_password(inv):
    inv.observe(host(HMI_MAC, "10.0.0.71", how="arp"))
    inv.observe(host(PLC_MAC, "10.0.0.50", how="arp"))
    c = MQTTConnect(side=0, protocol_name="MQTT", protocol_level=4, version="3.1.1", client_id="dev\x1b[31m",
                    username="line2", password_present=True, password_length=11)
    inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.connect", "request", c, op="connect"))
    for i in range(MAX_TOPICS + 5):
        p = MQTTPublish(side=0, topic=f"plant/t{i}", payload_length=1, payload_preview="1")
        inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.publish", "request", p, frame=100 + i,
                        op="publish"))
    ident = {r["attribute"]: r["value"] for r in rows(inv, "identity")}
    assert ident["client[dev\x1b[31m].Username"] == "line2"        # stored as received, escaped when shown
    assert ident["client[dev\x1b[31m].ProtocolLevel"] == "3.1.1"
    dump = "\n".join(str(r) for t in ("identity", "findings", "asset_events") for r in rows(inv, t))
    assert "line2-Pass" not in dump and "password_length" not in dump
    topics = [r for r in rows(inv, "topics") if r["asset_id"] == "mac:" + HMI_MAC]
    assert len(topics) == MAX_TOPICS
    a = next(a for a in rows(inv, "assets") if a["asset_id"] == "mac:" + HMI_MAC)
    assert '"topics": 5' in a["dropped"]


def test_mqtt_posture_anonymous_cleartext_and_wildcard(inv):
    inv.observe(host(HMI_MAC, "10.0.0.71", how="arp"))
    inv.observe(host(PLC_MAC, "10.0.0.50", how="arp"))
    anon = MQTTConnect(side=0, protocol_level=4, client_id="a")
    inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.connect", "request", anon, flow=1, frame=1))
    inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.connack", "response",
                    MQTTConnAck(side=1, return_code=0), flow=1, frame=2))
    cred = MQTTConnect(side=0, protocol_level=5, client_id="b", username="u", password_present=True)
    inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.connect", "request", cred, flow=2, frame=3))
    sub = MQTTSubscribe(side=0, packet_id=1, subscriptions=(MQTTSubscription(filter="#"),))
    inv.observe(msg("10.0.0.71", "10.0.0.50", 1883, "mqtt", "mqtt.subscribe", "request", sub, flow=2, frame=4))
    f = {(r["asset_id"], r["finding"]) for r in rows(inv, "findings")}
    broker, client = "mac:" + PLC_MAC, "mac:" + HMI_MAC
    assert (broker, "mqtt.anonymous_access") in f
    assert (broker, "mqtt.cleartext_credentials") in f and (client, "mqtt.cleartext_credentials") in f
    assert (client, "mqtt.wildcard_subscription") in f
    ev = next(r for r in rows(inv, "findings") if r["finding"] == "mqtt.anonymous_access")
    assert '"frame": 2' in ev["evidence"]


def test_modbus_cross_zone_hook(tmp_path):
    zones = {"10.0.0.5": "cell1", "10.9.0.9": "it"}
    inv = open_inventory(str(tmp_path / "z.db"), zone_of=lambda ip, mac, vlan, asset: zones.get(ip))
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    inv.observe(host(HMI_MAC, "10.9.0.9", how="arp"))
    inv.observe(msg("10.9.0.9", "10.0.0.5", 502, "modbus", "modbus.read_holding_registers", "response",
                    read_req()))
    inv.flush()
    f = {r["finding"] for r in inv.db["findings"].rows}
    assert {"modbus.no_authentication", "modbus.cross_zone"} <= f
    inv.close()


def test_hostnames_including_names_learnt_before_the_ip(inv):
    inv.observe(O.NameSeen(1.0, 1, "plc1.plant.local", "10.0.0.5", "", "dns"))
    inv.observe(O.NameSeen(1.0, 2, "plc1", "", PLC_MAC, "lldp"))
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp", ts=3.0))
    names = {r["name"]: r["source"] for r in rows(inv, "names")}
    assert names == {"plc1.plant.local": "dns", "plc1": "lldp"}


def test_services_from_flows_and_port_scan_guess(inv):
    inv.observe(host(PLC_MAC, "10.0.0.5", how="arp"))
    inv.observe(host(HMI_MAC, "10.0.0.66", how="arp"))
    for fid, port in enumerate(range(20, 30)):
        inv.observe(O.FlowStart(1.0, fid, fid, "tcp", 0, "10.0.0.66", 40000 + fid, "10.0.0.5", port, HMI_MAC,
                                PLC_MAC, False, "none", 0))
        flags = ("syn", "synack", "data") if port == 22 else ("syn", "rst")
        inv.observe(O.FlowEnd(1.1, fid, fid, "closed", 1.0, 1, 1, 60, 60, 0, 0, "none", flags, False,
                              0, 0, 0, 0, 0))
    svc = {(r["protocol"], r["port"]) for r in rows(inv, "services")}
    assert svc == {("ssh", 22)}
    cls = {a["asset_id"]: (a["device_class"], a["class_reason"]) for a in rows(inv, "assets")}
    assert cls["mac:" + HMI_MAC][0] == "scanner" and "9 TCP ports" in cls["mac:" + HMI_MAC][1]


def test_memory_inventory_works():
    inv = Inventory(connect(":memory:"))
    inv.observe(host(PLC_MAC, "10.0.0.5"))
    inv.flush()
    assert inv.db["assets"].count == 1
