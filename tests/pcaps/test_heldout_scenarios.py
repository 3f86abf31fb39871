"""Attack families of public labelled captures, made by real peers, must be alerted; the benign part must stay quiet.

pcaps/make_heldout_scenarios.py builds, in network namespaces, a multi-RTU
Modbus plant with an MQTT broker and an OPC UA server that runs normally and is
then attacked by families ``attack-scenarios.pcap`` does not hold: a flood
on a long-lived MQTT connection (a compromised sensor), Modbus
command injection across RTUs, a read sweep across RTUs, a Modbus query flood, an MQTT publish flood
with large payloads, an MQTT flood by many short clients, an MQTT
malformed-packet flood, an OPC UA connection flood
(Hello/OpenSecureChannel), an OPC UA session flood (CreateSession on one
channel), an OPC UA request flood on one session, a unit id sweep across 247
units behind the gateway, a compromised HMI injecting writes on its own polling
connection, an MQTT connection flood with a client id per connection (a second
attacker), OPC UA chunks past the negotiated buffer size, and floods of a key already in use on a connection
held since the start (the HMI reading its own polled block as fast as pymodbus goes, the sensor publishing its
own topic at QoS 1).  Its
benign part holds the near misses of those rules: an engineering station that
opens a Modbus connection per read at 5 Hz, a 1 MiB MQTT publish.  The capture
(about 50 MB: the floods) is generated in the test's temporary directory.

``otwatch analyze`` runs as a user runs it (a subprocess, with its inventory
and alerts) twice: without a baseline, and with the baseline ``otwatch
baseline learn`` learned from the benign part.  In each mode:

* every attack raises its expected alert (``EXPECTED``; ``BASELINE_ONLY`` only
  with the baseline) with an evidence frame inside the attack's window;
* no alert has evidence outside the attack windows (the benign part before
  them, the benign traffic that goes on around them), ``posture.*`` included:
  the configuration findings (Modbus without authentication, an anonymous
  broker, SecurityPolicy None …) are properties of the site the inventory
  keeps, not alerts, unless turned on;
* the benign part analysed alone raises no alert at all; with the posture
  alerts turned on (``--posture-alerts``, or ``posture.*: {enabled: true}`` in
  the policy's detections) it raises those findings, and nothing else.

Without a baseline a command injection is seen as a second master writing to
a unit the HMI commands (``command.modbus_rogue_writer``); what it wrote that
nobody wrote before (coverage, first write) needs the baseline (or a policy),
and is asserted only with it.  Nothing here is timed: windows come
from the attacking role's own clock, the one tcpdump stamps frames with.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from support.veth import netns_unavailable

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "pcaps" / "make_heldout_scenarios.py"

ROGUE, GW, BROKER, OPCUA, SENSOR, HMI = "10.50.0.66", "10.50.0.10", "10.50.0.50", "10.50.0.60", "10.50.0.71", "10.50.0.21"
BOT = "10.50.0.77"

# attack -> [(rule ids, one of which must be raised, {alert field: value})], in both modes
EXPECTED = {
    "sensor_flood": [(("dos.message_flood",), {"src": SENSOR, "dst": BROKER, "protocol": "mqtt"})],
    "modbus_injection": [(("command.modbus_rogue_writer",), {"src": ROGUE, "dst": GW, "protocol": "modbus"})],
    "rtu_read_sweep": [(("recon.modbus_register_sweep", "recon.modbus_unit_sweep"), {"src": ROGUE, "dst": GW})],
    "modbus_query_flood": [(("dos.message_flood",), {"src": ROGUE, "dst": GW, "protocol": "modbus"})],
    "mqtt_publish_flood": [(("dos.message_flood",), {"src": ROGUE, "dst": BROKER, "protocol": "mqtt"})],
    "mqtt_client_flood": [(("dos.message_flood",), {"src": ROGUE, "dst": BROKER, "protocol": "mqtt"})],
    "mqtt_malformed_flood": [(("protocol.mqtt_malformed",), {"src": ROGUE, "dst": BROKER}),
                             (("dos.mqtt_connection_flood",), {"src": ROGUE, "dst": BROKER})],
    "opcua_connection_flood": [(("dos.connection_flood",), {"src": ROGUE, "dst": OPCUA, "protocol": "opcua"})],
    "opcua_session_flood": [(("dos.opcua_session_flood",), {"src": ROGUE, "dst": OPCUA})],
    "opcua_request_flood": [(("dos.message_flood",), {"src": ROGUE, "dst": OPCUA, "protocol": "opcua"})],
    "modbus_unit_sweep": [(("recon.modbus_unit_sweep",), {"src": ROGUE, "dst": GW, "protocol": "modbus"})],
    "mqtt_connect_flood": [(("dos.mqtt_connection_flood",), {"src": BOT, "dst": BROKER})],
    "opcua_oversized_chunks": [(("dos.opcua_resource_exhaustion",), {"src": ROGUE, "dst": OPCUA})],
}
"""``sensor_flood`` is a flood of a second or so on a connection held since the start, on a topic of its own:
the connection's average (the whole scenario, one interval) hides it; the active span of the keys new in the
interval shows it (sensor/alerts/rates.py).  ``modbus_unit_sweep`` comes after the rogue's other Modbus attacks
in the same interval, past the engine's key budget of a source: its unit ids are counted from the link's
aggregates, with the server and evidence inside the sweep.  ``hmi_poll_flood`` repeats the HMI's own polled
block on its own connection (no key is new): the kernels' busiest second per key shows it (``interval_peak``)."""
DEFAULT_INTERVAL_ONLY = {
    "sensor_topic_flood": [(("dos.message_flood",), {"src": SENSOR, "dst": BROKER, "protocol": "mqtt"})],
    "hmi_poll_flood": [(("dos.message_flood",), {"src": HMI, "dst": GW, "protocol": "modbus"})],
}
"""Floods that bring no new key: the sensor's QoS 1 flood of the topic it always published (5,000 PUBLISHes)
and the HMI's 3,000 reads of its own polled block (6,000 messages), each little more than one ``messages``
threshold's worth (kept small: the scenario runs on two loaded cores), so each is judged in the interval that
holds it whole (the default 60 s holds the whole scenario); five-second intervals may cut one in two, each part
under ``messages``.  The evidence is each key's busiest second."""
SETTLED_ONLY = {
    "hmi_injection": [(("command.modbus_write_burst",), {"src": HMI, "dst": GW, "protocol": "modbus"})],
}
"""The HMI's own connection injecting writes is a write burst once the HMI counts as settled (60 s by default,
longer than this scenario): asserted with ``settled`` at 5 s (``SETTLED_POLICY``)."""
SETTLED_POLICY = """\
version: 1
zones:
  plant:
    networks: [10.50.0.0/24]
detections:
  command.modbus_write_burst: {thresholds: {settled: 5}}
"""
BASELINE_ONLY = {
    "hmi_injection": [(("baseline.write_outside_coverage",), {"src": HMI, "dst": GW})],
    "modbus_injection": [(("baseline.write_outside_coverage",), {"src": ROGUE, "dst": GW}),
                         (("baseline.first_write",), {"src": ROGUE, "dst": GW})],
    "rtu_read_sweep": [(("baseline.register_sweep", "baseline.read_outside_coverage"), {"src": ROGUE, "dst": GW})],
}
CONFIG_POSTURE = {"posture.modbus.no_authentication", "posture.mqtt.anonymous_access",
                  "posture.opcua.cleartext_username_offered",
                  "posture.opcua.security_policy_none", "posture.opcua.anonymous_token"}
"""Configuration posture findings the benign plant has (every Modbus RTU gateway is open, the broker takes
anonymous clients, the OPC UA server offers SecurityPolicy None to anonymous sessions): findings, not alerts,
unless turned on."""
POSTURE_ON_POLICY = """\
version: 1
zones:
  plant:
    networks: [10.50.0.0/24]
detections:
  posture.*: {enabled: true}
"""


def _unavailable() -> str | None:
    return netns_unavailable(("tcpdump", "mosquitto"), ("asyncua", "paho.mqtt", "pymodbus"))


def otwatch(*args, db: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OTWATCH_DB=str(db))
    env.pop("OTWATCH_BASELINE", None)
    return subprocess.run([sys.executable, "-m", "otwatch.sensor", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def prefix_before(pcap: bytes, cut: float) -> bytes:
    pos = 24
    while pos + 16 <= len(pcap):
        sec, us, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        if sec + us / 1e6 >= cut:
            break
        pos += 16 + incl
    return pcap[:pos]


def alerts_of(path: Path) -> list[dict]:
    """The last state of each alert in an --alerts-json file."""
    last = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        last[d["event"]["id"]] = d
    return list(last.values())


def analyze(capture: Path, d: Path, name: str, *extra: str) -> list[dict]:
    out = d / f"{name}.jsonl"
    r = otwatch("analyze", str(capture), "-q", "--alerts-json", str(out), *extra, db=d / f"{name}.db")
    assert r.returncode == 0, r.stdout + r.stderr
    return alerts_of(out)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("heldout")
    prefix = f"otwho{os.getpid()}"
    r = subprocess.run([sys.executable, str(BUILDER), "--out", str(d), "--prefix", prefix],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert prefix + "-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    capture = d / "heldout-scenarios.pcap"
    windows = json.loads((d / "heldout-scenarios.json").read_text())
    cut = windows["start"] + windows["normal_fraction"] * (windows["end"] - windows["start"])
    normal = d / "normal.pcap"
    normal.write_bytes(prefix_before(capture.read_bytes(), cut))
    baseline = d / "baseline.yaml"
    r = otwatch("baseline", "learn", "--fresh", "--baseline", str(baseline), str(normal), db=d / "learn.db")
    assert r.returncode == 0, r.stdout + r.stderr
    return {"dir": d, "capture": capture, "windows": windows, "cut": cut, "normal": normal, "baseline": baseline}


def _matches(a: dict, rules: tuple, want: dict) -> bool:
    if a["rule"]["id"] not in rules:
        return False
    got = {"src": a.get("source", {}).get("ip", ""), "dst": a.get("destination", {}).get("ip", ""),
           "protocol": a.get("network", {}).get("protocol", "")}
    return all(got[k] == v for k, v in want.items())


def check(alerts: list[dict], windows: dict, cut: float, expected: dict) -> None:
    attacks = windows["attacks"]
    assert set(attacks) == {"sensor_flood", "modbus_injection", "rtu_read_sweep", "modbus_query_flood", "mqtt_publish_flood",
                            "mqtt_client_flood",
                            "mqtt_malformed_flood", "opcua_connection_flood", "opcua_session_flood",
                            "opcua_request_flood", "hmi_injection", "modbus_unit_sweep", "mqtt_connect_flood",
                            "opcua_oversized_chunks", "sensor_topic_flood", "hmi_poll_flood"}

    def window_of(ts: float):
        return next((name for name, (lo, hi) in attacks.items() if lo <= ts <= hi), None)

    stray = sorted({(a["rule"]["id"], e["frame"], a["message"][:100]) for a in alerts
                    for e in a["otwatch"]["evidence"] if window_of(e["ts"]) is None})
    assert not stray, stray
    assert all(e["ts"] >= cut for a in alerts for e in a["otwatch"]["evidence"])
    for attack, wanted in expected.items():
        for rules, want in wanted:
            lo, hi = attacks[attack]       # (windows of different roles may overlap)
            hit = [a for a in alerts if _matches(a, rules, want)
                   and any(lo <= e["ts"] <= hi for e in a["otwatch"]["evidence"])]
            assert hit, (attack, rules, want, sorted({(a["rule"]["id"], e["frame"]) for a in alerts
                                                      for e in a["otwatch"]["evidence"]
                                                      if lo <= e["ts"] <= hi}))


@pytest.mark.netns
def test_without_a_baseline(scenario):
    s = scenario
    check(analyze(s["capture"], s["dir"], "plain"), s["windows"], s["cut"], {**EXPECTED, **DEFAULT_INTERVAL_ONLY})


@pytest.mark.netns
def test_without_a_baseline_in_short_intervals(scenario):
    """Five-second intervals: the floods are judged per interval too (sensor/alerts/rates.py, from the link
    counts), with evidence inside them, and the benign traffic around them — the 5 Hz engineering station, the
    2 Hz HMI, the 1 MiB firmware PUBLISH — raises nothing.  With ``settled`` at 5 s the HMI's injection from
    its own connection is a write burst."""
    s = scenario
    policy = s["dir"] / "settled.yaml"
    policy.write_text(SETTLED_POLICY)
    expected = {k: [*EXPECTED.get(k, []), *SETTLED_ONLY.get(k, [])] for k in {*EXPECTED, *SETTLED_ONLY}}
    check(analyze(s["capture"], s["dir"], "short", "--interval", "5", "--policy", str(policy)), s["windows"],
          s["cut"], expected)


@pytest.mark.netns
def test_the_capture_holds_only_the_scenario_s_hosts(scenario):
    """The IGMP reports of the namespaces' kernels (from 0.0.0.0 as an interface comes up, from the historian
    when it joins a multicast group) depend on timing and a policy denies them: the benign part must be the
    same in every build, so the capture is filtered to the scenario's hosts (``TCPDUMP_FILTER``)."""
    data = scenario["capture"].read_bytes()
    pos, strays = 24, set()
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if frame[12:14] == b"\x08\x00":
            src, dst = frame[26:30], frame[30:34]
            if not (src[:3] == dst[:3] == bytes((10, 50, 0))):
                strays.add((frame[23], ".".join(map(str, src)), ".".join(map(str, dst))))
        elif frame[12:14] != b"\x08\x06":
            strays.add(("ethertype", frame[12:14].hex()))
    assert not strays, strays


@pytest.mark.netns
def test_with_the_baseline_learned_on_the_benign_part(scenario):
    s = scenario
    expected = {k: [*EXPECTED.get(k, []), *BASELINE_ONLY.get(k, []), *DEFAULT_INTERVAL_ONLY.get(k, [])]
                for k in {*EXPECTED, *BASELINE_ONLY, *DEFAULT_INTERVAL_ONLY}}
    check(analyze(s["capture"], s["dir"], "baseline", "--baseline", str(s["baseline"])), s["windows"], s["cut"],
          expected)


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["plain", "baseline"])
def test_the_benign_part_alone_raises_nothing(scenario, mode):
    s = scenario
    extra = ("--baseline", str(s["baseline"])) if mode == "baseline" else ()
    alerts = analyze(s["normal"], s["dir"], f"normal-{mode}", *extra)
    assert [(a["rule"]["id"], a["message"][:100]) for a in alerts] == []


@pytest.mark.netns
@pytest.mark.parametrize("switch", ["flag", "policy"])
def test_the_posture_findings_are_alerts_when_turned_on(scenario, switch):
    s = scenario
    if switch == "flag":
        extra = ("--posture-alerts",)
    else:
        policy = s["dir"] / "posture-on.yaml"
        policy.write_text(POSTURE_ON_POLICY)
        extra = ("--policy", str(policy))
    alerts = analyze(s["normal"], s["dir"], f"normal-posture-{switch}", *extra)
    assert {a["rule"]["category"] for a in alerts} == {"posture"}, [a["rule"]["id"] for a in alerts]
    assert {a["rule"]["id"] for a in alerts} == CONFIG_POSTURE
