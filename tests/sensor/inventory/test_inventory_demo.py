"""End to end on pcaps/demo-plant.pcap: every device, its role, identity and findings; the CLI."""
from __future__ import annotations

import json
import pathlib

import pytest
from click.testing import CliRunner

from otwatch.sensor.cli import cli
from otwatch.sensor.inventory.store import load_rows, open_inventory
from otwatch.sensor.inventory.summary import by_asset
from otwatch.sensor.pipeline import Pipeline

PCAP = pathlib.Path(__file__).resolve().parents[3] / "pcaps" / "demo-plant.pcap"
pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="pcaps/demo-plant.pcap missing")

# host: (ip, mac, class, roles)   -- pcaps/make_demo_plant.py HOSTS
PLANT = {
    "plc1": ("10.10.0.11", "00:80:f4:0a:00:0b", "plc", {"modbus.server"}),
    "plc2": ("10.10.0.12", "00:1b:1b:0a:00:0c", "plc", {"modbus.server"}),
    "hmi": ("10.10.0.21", "00:00:bc:0a:00:15", "hmi/scada", {"modbus.client"}),
    "scada": ("10.10.0.22", "02:00:0a:0a:00:16", "hmi/scada", {"opcua.client"}),
    "ews": ("10.10.0.31", "00:14:22:0a:00:1f", "engineering workstation", {"modbus.client"}),
    "historian": ("10.10.0.41", "02:00:0a:0a:00:29", "historian", {"mqtt.client"}),
    "broker": ("10.10.0.50", "02:00:0a:0a:00:32", "broker", {"mqtt.broker"}),
    "dns": ("10.10.0.53", "02:00:0a:0a:00:35", "server", set()),
    "opcua": ("10.10.0.60", "02:00:0a:0a:00:3c", "server", {"opcua.server"}),
    "rogue": ("10.10.0.66", "02:00:0a:0a:00:42", "scanner", {"modbus.client", "mqtt.client"}),
    "sensor1": ("10.10.0.71", "02:00:0a:0a:00:47", "field device", {"mqtt.client"}),
    "sensor2": ("10.10.0.72", "02:00:0a:0a:00:48", "field device", {"mqtt.client"}),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("inv") / "demo.db")
    inv = open_inventory(path)
    pipe = Pipeline([inv])
    pipe.run_file(str(PCAP))
    pipe.finish()
    inv.close()
    inv2 = open_inventory(path)
    snap = load_rows(inv2.db)
    inv2.db.close()
    kids = by_asset(snap)
    assets = {a["asset_id"]: dict(a, **kids[a["asset_id"]]) for a in snap["assets"]}
    return path, assets, snap


def ident(asset):
    return {(r["protocol"], r["attribute"]): r for r in asset["identity"]}


def findings(asset):
    return {(r["finding"], r["subject"]) for r in asset["findings"]}


def test_every_device_is_one_asset_with_its_class_and_roles(demo):
    _, assets, _ = demo
    assert set(assets) == {"mac:" + mac for _, mac, _, _ in PLANT.values()}
    for host, (ip, mac, cls, roles) in PLANT.items():
        a = assets["mac:" + mac]
        assert a["ip"] == ip, host
        assert a["device_class"] == cls, (host, a["class_reason"])
        assert {r["role"] for r in a["roles"]} == roles, host
        assert a["class_reason"], host


def test_rogue_is_a_separate_scanner(demo):
    _, assets, _ = demo
    rogue = assets["mac:02:00:0a:0a:00:42"]
    assert rogue["device_class"] == "scanner" and "function-code sweep" in rogue["class_reason"]
    assert ("mqtt.wildcard_subscription", "#") in findings(rogue)
    assert ident(rogue)[("mqtt", "client[mqtt-explorer-6f1c].ClientId")]["value"] == "mqtt-explorer-6f1c"
    assert rogue["first_seen"] > assets["mac:00:00:bc:0a:00:15"]["first_seen"]


def test_plc_identity_from_modbus_device_identification(demo):
    _, assets, _ = demo
    for mac, vendor, product, rev, model in (
            ("00:80:f4:0a:00:0b", "Schneider Electric", "Modicon M340", "v3.20", "BMX P34 2020"),
            ("00:1b:1b:0a:00:0c", "Siemens AG", "SIMATIC S7-1200", "V4.5", "CPU 1214C DC/DC/DC")):
        a = assets["mac:" + mac]
        i = ident(a)
        assert i[("modbus", "VendorName")]["value"] == vendor
        assert i[("modbus", "ProductName")]["value"] == product
        assert i[("modbus", "MajorMinorRevision")]["value"] == rev
        assert i[("modbus", "ModelName")]["value"] == model
        assert i[("modbus", "ProductCode")]["value"]
        assert i[("modbus", "VendorUrl")]["value"].startswith("http://")
        assert vendor in i[("modbus", "ServerIdData")]["value"]
        src = i[("modbus", "VendorName")]
        assert src["source"].startswith("modbus.encapsulated_interface_transport frame ")
        assert src["frame"] > 0 and src["last_seen"] >= src["first_seen"]
        assert a["vendor"]                           # OUI registry
        (srv,) = a["roles"]
        assert srv["detail"]["units"] == [1] and srv["confidence"] >= 0.9
        assert ("modbus.no_authentication", "") in findings(a)
    assert assets["mac:00:80:f4:0a:00:0b"]["vendor"] == "TELEMECANIQUE ELECTRIQUE"
    assert {n["name"] for n in assets["mac:00:80:f4:0a:00:0b"]["names"]} == {"plc1", "plc1.plant.local"}


def test_opcua_server_identity_endpoints_and_findings(demo):
    _, assets, _ = demo
    a = assets["mac:02:00:0a:0a:00:3c"]
    i = ident(a)
    assert i[("opcua", "ApplicationUri")]["value"] == "urn:otwatch:demo:opcua-server"
    assert i[("opcua", "ApplicationName")]["value"] == "otwatch demo OPC UA server"
    assert i[("opcua", "ProductUri")]["value"]
    assert i[("opcua", "ApplicationType")]["value"]
    assert i[("opcua", "SecurityPolicies")]["value"] == "Basic256Sha256,None"
    assert "CN=opcua.plant.local" in i[("opcua", "CertificateSubject")]["value"]
    assert i[("opcua", "CertificateNotAfter")]["value"]
    assert any(k[1].startswith("Endpoint[") for k in i)
    f = {x for x, _ in findings(a)}
    assert {"opcua.security_policy_none", "opcua.anonymous_token", "opcua.cleartext_username",
            "opcua.cleartext_username_offered", "opcua.certificate_self_signed"} <= f
    assert ("opcua.cleartext_username", "operator") in findings(a)
    assert {s["port"] for s in a["services"]} == {4840}


def test_mqtt_broker_and_clients(demo):
    _, assets, _ = demo
    broker = assets["mac:02:00:0a:0a:00:32"]
    assert ident(broker)[("mqtt", "broker_version")]["value"].startswith("mosquitto version")
    assert {"mqtt.anonymous_access", "mqtt.cleartext_credentials"} <= {x for x, _ in findings(broker)}
    s2 = ident(assets["mac:02:00:0a:0a:00:48"])
    assert s2[("mqtt", "client[line2-sensor].Username")]["value"] == "line2"
    assert s2[("mqtt", "client[line2-sensor].ProtocolLevel")]["value"] == "5.0"
    s1 = ident(assets["mac:02:00:0a:0a:00:47"])
    assert s1[("mqtt", "client[line1-sensor].ProtocolLevel")]["value"] == "3.1.1"
    hist = assets["mac:02:00:0a:0a:00:29"]
    assert {t["topic"] for t in hist["topics"] if t["how"] == "subscribe"} == {"plant/#", "$SYS/broker/#"}


def test_peers_and_events(demo):
    _, assets, snap = demo
    hmi = assets["mac:00:00:bc:0a:00:15"]
    peers = {(p["peer_id"], p["protocol"]) for p in hmi["peers"] if p["direction"] == "client"}
    assert {("mac:00:80:f4:0a:00:0b", "modbus"), ("mac:00:1b:1b:0a:00:0c", "modbus")} <= peers
    types = {e["type"] for e in snap["asset_events"]}
    assert {"asset.new", "role.new", "service.new", "identity.new", "finding.new"} <= types
    assert sum(e["type"] == "asset.new" for e in snap["asset_events"]) == len(PLANT)


def test_second_run_merges_without_new_assets(demo, tmp_path):
    path = str(tmp_path / "twice.db")
    for _ in range(2):
        inv = open_inventory(path)
        p = Pipeline([inv])
        p.run_file(str(PCAP))
        p.finish()
        inv.close()
    inv = open_inventory(path)
    snap = load_rows(inv.db)
    inv.db.close()
    assert len(snap["assets"]) == len(PLANT)
    assert sum(e["type"] == "asset.new" for e in snap["asset_events"]) == len(PLANT)
    _, first, _ = demo
    plc = next(a for a in snap["assets"] if a["asset_id"] == "mac:00:80:f4:0a:00:0b")
    assert plc["packets_sent"] == 2 * first["mac:00:80:f4:0a:00:0b"]["packets_sent"]


def test_cli_commands(demo, tmp_path):
    path, _, _ = demo
    r = CliRunner()
    out = r.invoke(cli, ["inventory", "--db", path])
    assert out.exit_code == 0, out.output
    assert "10.10.0.66" in out.output and "scanner" in out.output and "Modicon M340" in out.output
    out = r.invoke(cli, ["inventory", "show", "plc1", "--db", path])
    assert out.exit_code == 0, out.output
    assert "MajorMinorRevision = v3.20" in out.output and "evidence:" in out.output
    out = r.invoke(cli, ["inventory", "--db", path, "show", "10.10.0.60"])
    assert "opcua.cleartext_username" in out.output
    out = r.invoke(cli, ["inventory", "show", "nothing-like-this", "--db", path])
    assert out.exit_code != 0
    out = r.invoke(cli, ["inventory", "export", "--format", "json", "--db", path])
    data = json.loads(out.output)
    assert len(data["assets"]) == len(PLANT)
    out = r.invoke(cli, ["inventory", "export", "--format", "csv", "--db", path])
    assert out.output.count("\n") == len(PLANT) + 1
    out = r.invoke(cli, ["inventory", "graph", "--format", "dot", "--db", path])
    assert out.output.startswith("digraph") and "modbus :502" in out.output
    svg = tmp_path / "map.svg"
    out = r.invoke(cli, ["inventory", "graph", "--format", "svg", "-o", str(svg), "--db", path])
    if out.exit_code == 0:
        assert svg.read_bytes().lstrip().startswith(b"<?xml") or b"<svg" in svg.read_bytes()
    else:
        assert "dot" in out.output
    out = r.invoke(cli, ["inventory", "events", "--type", "finding.new", "--db", path])
    assert "finding.new" in out.output


def test_graph_svg_missing_dot_is_a_clear_error(demo, monkeypatch):
    path, _, _ = demo
    monkeypatch.setattr("shutil.which", lambda name: None)
    out = CliRunner().invoke(cli, ["inventory", "graph", "--format", "svg", "--db", path])
    assert out.exit_code != 0 and "Graphviz 'dot' was not found" in out.output


def test_missing_database_is_a_clear_error(tmp_path):
    out = CliRunner().invoke(cli, ["inventory", "--db", str(tmp_path / "none.db")])
    assert out.exit_code != 0 and "no inventory" in out.output
    assert not (tmp_path / "none.db").exists()


def test_terminal_escaping_of_wire_strings(tmp_path):
    from otwatch.sensor import observations as O
    from otwatch.parsers.mqtt.events import MQTTConnect

    path = str(tmp_path / "esc.db")
    inv = open_inventory(path)
    inv.observe(O.HostSeen(1.0, 1, "02:00:00:00:00:01", "10.0.0.1", 0, "arp"))
    inv.observe(O.HostSeen(1.0, 1, "02:00:00:00:00:02", "10.0.0.2", 0, "arp"))
    inv.observe(O.NameSeen(1.0, 1, "evil\x1b]0;pwned\x07", "10.0.0.1", "", "dns"))
    inv.observe(O.NameSeen(1.0, 1, "c1\x9b2Jcsi\u2028", "10.0.0.1", "", "dns"))      # 8-bit CSI, line separator
    ev = MQTTConnect(side=0, protocol_level=4, client_id="x\x1b[2J")
    inv.observe(O.Message(1.0, 2, "mqtt", "mqtt.connect", "connect", "", "request", 1, 1, "10.0.0.1", "10.0.0.2",
                          1883, ev, (1,)))
    inv.close()
    for args in (["inventory", "--db", path], ["inventory", "show", "10.0.0.1", "--db", path],
                 ["inventory", "graph", "--db", path], ["inventory", "events", "--db", path],
                 ["inventory", "export", "--format", "csv", "--db", path],
                 ["inventory", "export", "--format", "json", "--db", path]):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 0, out.output
        bad = [c for c in out.output if (ord(c) < 0x20 and c not in "\r\n\t") or 0x7F <= ord(c) < 0xA0
               or c in "\u2028\u2029"]
        assert not bad, (args, bad)
    # nothing is lost: JSON gives the names back exactly, CSV shows them escaped
    data = json.loads(CliRunner().invoke(cli, ["inventory", "export", "--format", "json", "--db", path]).output)
    names = {n["name"] for a in data["assets"] for n in a["names"]}
    assert {"evil\x1b]0;pwned\x07", "c1\x9b2Jcsi\u2028"} <= names
    text = CliRunner().invoke(cli, ["inventory", "export", "--format", "csv", "--db", path]).output
    assert "evil\\x1b]0;pwned\\x07" in text and "c1\\x9b2Jcsi\\u2028" in text


def test_modbus_reached_from_outside_its_zone_on_the_capture(tmp_path):
    """With zones (the policy hook), the rogue's Modbus traffic to plc1 is a cross-zone finding
    with its frame; the HMI and EWS in the control zone raise none."""
    control = {PLANT[h][0] for h in ("plc1", "plc2", "hmi", "ews")}
    zone_of = lambda ip, mac, vlan, asset: "control" if ip in control else "plant-dmz"  # noqa: E731
    path = str(tmp_path / "z.db")
    inv = open_inventory(path, zone_of=zone_of)
    pipe = Pipeline([inv])
    pipe.run_file(str(PCAP))
    pipe.finish()
    inv.close()
    inv2 = open_inventory(path)
    rows = [dict(r) for r in inv2.db["findings"].rows_where("finding = ?", ["modbus.cross_zone"])]
    inv2.db.close()
    assert [(r["asset_id"], r["subject"]) for r in rows] == [("mac:" + PLANT["plc1"][1], PLANT["rogue"][0])]
    r = rows[0]
    # the first answer plc1 gives the rogue: after its FC43/14 request in frame 3148 (pcaps/README.md)
    assert r["severity"] == "high" and 3148 < r["frame"] < 3160 and r["count"] >= 1
    assert "zone plant-dmz" in r["detail"] and "control" in r["detail"]
