"""PolicyChecker in the pipeline, on captures made by real peers (pcaps/README.md).

* The demo policy (rules/demo-plant.yaml) on the demo plant raises exactly the
  violations it documents: everything the rogue host does, the engineering
  workstation's read beyond the register map, SCADA's SecurityMode None
  channels; with evidence frames at those events (pcaps/README.md time-line).
* A policy that allows everything the capture shows raises nothing.
* The verdict cache is invisible: the same findings with it off, tiny, or large.
* OPC UA: a Sign-only channel is caught against a SignAndEncrypt minimum.
* Detection settings (disable, severity, allow-list), source.start, aggregates.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.policyhelp import policy

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.pipeline import Pipeline
from otwatch.sensor.policy import PolicyChecker, load_policy

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
UA = ROOT / "pcaps" / "opcua-security.pcap"
DEMO_POLICY = ROOT / "rules" / "demo-plant.yaml"
ROGUE, EWS, SCADA, PLC1, PLC2, BROKER, OPCUA = ("10.10.0.66", "10.10.0.31", "10.10.0.22", "10.10.0.11",
                                                "10.10.0.12", "10.10.0.50", "10.10.0.60")
ROGUE_FIRST_FRAME = 3021      # pcaps/README.md: the rogue's ping sweep starts


def run(pol, pcap=DEMO, **kw) -> tuple[list, PolicyChecker]:
    sink = ListSink()
    checker = PolicyChecker(pol, sink, **kw)
    pipe = Pipeline([checker])
    pipe.run_file(str(pcap))
    pipe.finish()
    return sink.findings, checker


@pytest.fixture(scope="module")
def demo():
    return run(load_policy(DEMO_POLICY))


def test_demo_policy_findings_are_the_documented_ones(demo):
    findings, _ = demo
    by = {}
    for f in findings:
        by.setdefault((f.rule, f.src, f.dst), []).append(f)
    assert set(by) == {
        ("policy.flow_denied", ROGUE, PLC1), ("policy.flow_denied", ROGUE, PLC2),
        ("policy.flow_denied", ROGUE, BROKER),
        ("policy.operation_denied", ROGUE, PLC1), ("policy.operation_denied", ROGUE, BROKER),
        ("policy.operation_denied", EWS, PLC2),
        ("policy.security_mode_below_minimum", SCADA, OPCUA),
    }
    for f in findings:
        if f.src == ROGUE:
            assert f.evidence.frame >= ROGUE_FIRST_FRAME and f.src_zone == "unzoned"
            assert "no conduit from zone unzoned" in f.message
        assert f.category == "policy" and f.evidence.source == str(DEMO) and f.evidence.flow_id > 0
    # the port scan, the Modbus connections, the ping, MQTT and the OPC UA probe: one condition per service
    labels = {f.key[-1] for f in by[("policy.flow_denied", ROGUE, PLC1)]}
    assert labels == {"tcp", "modbus", "opcua", "ip/1"}


def _one(findings, **want):
    got = [f for f in findings if all(getattr(f, k) == v for k, v in want.items() if k != "details")
           and all(f.details.get(k) == v for k, v in want.get("details", {}).items())]
    assert got, want
    return got[0]


def test_demo_rogue_write_and_sweep_with_attack_techniques(demo):
    findings, _ = demo
    w = _one(findings, rule="policy.operation_denied", src=ROGUE, details={"kind": "modbus.write_single_register"})
    assert w.evidence.frame == 3154 and w.technique == "T0855" and w.severity == "high"   # HR0 = 9999
    assert w.details["function_code"] == 6 and w.dst_zone == "control" and w.protocol == "modbus"
    d = _one(findings, rule="policy.operation_denied", src=ROGUE,
             details={"kind": "modbus.encapsulated_interface_transport"})
    assert d.evidence.frame == 3148 and d.technique == "T0888"                           # device identification
    p = _one(findings, rule="policy.operation_denied", src=ROGUE, details={"op": "program"})
    assert p.technique == "T0843" and p.severity == "critical" and 3156 <= p.evidence.frame <= 3408
    sweep = [f for f in findings if f.src == ROGUE and f.rule == "policy.operation_denied" and f.protocol == "modbus"]
    assert {f.details["function_code"] for f in sweep} >= set(range(1, 128)) - {43}   # all of 1..127 seen
    sub = _one(findings, rule="policy.operation_denied", src=ROGUE, details={"filters": ["#"]})
    assert sub.evidence.frame == 3436 and sub.technique == "T0801"
    pub = _one(findings, rule="policy.operation_denied", src=ROGUE, details={"topic": "plant/line1/cmd"})
    assert pub.evidence.frame == 3700 and pub.technique == "T0855"
    flow = _one(findings, rule="policy.flow_denied", src=ROGUE, protocol="modbus")
    assert flow.technique == "T0869" and flow.severity == "high" and flow.port == 502
    scan = _one(findings, rule="policy.flow_denied", src=ROGUE, protocol="tcp")
    assert scan.technique == "T0886" and scan.evidence.frame >= 3119


def test_demo_ews_read_beyond_register_map(demo):
    findings, _ = demo
    (f,) = [f for f in findings if f.src == EWS]
    assert f.details["code"] == "register" and f.details["rule"] == "engineering-to-plcs"
    assert "holding_registers 500-509 outside 0-119" in f.message
    assert 2218 <= f.evidence.frame <= 2225 and f.technique == "T0801"


def test_demo_scada_security_mode_none(demo):
    findings, _ = demo
    modes = [f for f in findings if f.rule == "policy.security_mode_below_minimum"]
    assert modes and all(f.details["mode"] == "None" and f.details["minimum"] == "Sign" for f in modes)
    # judged at the sessions' CreateSession (frame 281: anonymous; 1733: user operator), not at the
    # discovery channel's GetEndpoints (frame 263), which may use None
    frames = sorted(f.evidence.frame for f in modes)
    assert frames[0] == 281 and 263 not in frames and len(frames) == 2


ALLOW_SEEN = """\
version: 1
zones:
  control: {networks: [10.10.0.11/32, 10.10.0.12/32]}
  supervisory: {networks: [10.10.0.21/32, 10.10.0.22/32, 10.10.0.31/32]}
  operations: {networks: [10.10.0.41/32, 10.10.0.50/32, 10.10.0.53/32, 10.10.0.60/32]}
  field: {networks: [10.10.0.71/32, 10.10.0.72/32]}
  visitor: {networks: [10.10.0.66/32]}
conduits:
  sup-control:
    from: [supervisory, visitor]
    to: control
    allow:
      - protocol: modbus
        modbus: {operations: [read, write, diagnostic, program, other], function_codes: [1-127], units: [1]}
      - protocol: opcua
      - protocol: tcp
      - protocol: icmp
  to-ops:
    from: [supervisory, field, visitor]
    to: operations
    allow:
      - protocol: opcua
        opcua:
          services: [Browse, TranslateBrowsePathsToNodeIds, Read, Write, Call, CreateSubscription,
                     CreateMonitoredItems, DeleteSubscriptions, Publish]
          min_security_mode: None
      - protocol: mqtt
        mqtt: {publish: ["plant/#"], subscribe: ["#"]}
      - protocol: udp
        ports: [53]
"""


def test_policy_allowing_everything_seen_raises_nothing():
    findings, checker = run(policy(ALLOW_SEEN))
    assert findings == []
    assert checker.verdicts.misses > 0


def _as_tuple(f):
    return dataclasses.astuple(f)


def test_verdict_cache_is_invisible_in_the_output(demo):
    findings, checker = demo
    assert checker.verdicts.hits > 0                       # the default cache answered some
    pol = load_policy(DEMO_POLICY)
    for cache_max in (0, 1):
        other, ch = run(pol, cache_max=cache_max)
        assert [_as_tuple(f) for f in other] == [_as_tuple(f) for f in findings]
    assert ch.verdicts.misses > checker.verdicts.misses


UA_POLICY = """\
version: 1
zones:
  servers: {networks: [10.30.0.10/32, 10.30.0.20/32]}
  clients: {networks: [10.30.0.31/32, 10.30.0.41/32]}
conduits:
  c:
    from: clients
    to: servers
    allow:
      - protocol: opcua
        opcua: {min_security_mode: SignAndEncrypt}
"""


def test_opcua_sign_only_channel_is_below_sign_and_encrypt():
    findings, _ = run(policy(UA_POLICY), UA)
    got = {(f.src, f.dst, f.details["mode"]) for f in findings}
    assert all(f.rule == "policy.security_mode_below_minimum" for f in findings)
    assert ("10.30.0.41", "10.30.0.10", "Sign") in got           # Basic256 Sign (frame 210)
    assert ("10.30.0.41", "10.30.0.20", "Sign") in got           # Aes128_Sha256_RsaOaep Sign
    assert ("10.30.0.31", "10.30.0.10", "None") in got           # hmi's sessions over None
    assert ("10.30.0.41", "10.30.0.10", "None") not in got       # eng's discovery over None is not judged
    assert ("10.30.0.41", "10.30.0.20", "None") not in got
    sign = _one(findings, src="10.30.0.41", dst="10.30.0.10", details={"mode": "Sign"})
    assert sign.evidence.frame == 213                            # the first readable message on that channel
    # the SignAndEncrypt channels (Basic128Rsa15, Basic256Sha256) raise nothing
    assert len([f for f in findings if f.details["mode"] == "Sign"]) == 2
    relaxed, _ = run(policy(UA_POLICY.replace("SignAndEncrypt", "Sign")), UA)
    assert {f.details["mode"] for f in relaxed} == {"None"}


def test_detection_settings_disable_severity_allow():
    base = DEMO_POLICY.read_text()
    off = base.replace("  policy.flow_denied:\n    severity: high\n", "  policy.flow_denied:\n    enabled: false\n")
    findings, _ = run(policy(off))
    assert findings and not [f for f in findings if f.rule == "policy.flow_denied"]
    sev = base.replace("  policy.flow_denied:\n    severity: high\n", "  policy.flow_denied:\n    severity: low\n")
    findings, _ = run(policy(sev))
    assert {f.severity for f in findings if f.rule == "policy.flow_denied"} == {"low"}
    allow = base + "  policy.operation_denied:\n    allow: [10.10.0.66, engineering]\n"
    findings, _ = run(policy(allow))
    assert not [f for f in findings if f.rule == "policy.operation_denied"]
    assert [f for f in findings if f.rule == "policy.flow_denied"]


@dataclasses.dataclass(frozen=True)
class _SourceStart:        # the shape of firstrun's observation (type "source.start", field source)
    source: str
    type: str = "source.start"


def _flow(fid=1, client="10.0.3.5", server="10.0.1.5", port=502, proto="modbus", link=1):
    return O.FlowStart(1.0, 7, fid, "tcp", 0, client, 40000, server, port, "", "", False, proto, link)


P = """\
version: 1
zones:
  control: {networks: [10.0.1.0/24]}
  ops: {networks: [10.0.3.0/24]}
conduits:
  c:
    from: ops
    to: control
    allow:
      - protocol: modbus
        modbus: {operations: [read]}
"""


def test_source_start_sets_evidence_source():
    sink = ListSink()
    ch = PolicyChecker(policy(P), sink)
    ch.observe(_SourceStart("iface:eth1"))
    ch.observe(_flow(port=22, proto="none"))
    (f,) = sink.findings
    assert f.evidence.source == "iface:eth1" and f.evidence.frame == 7 and f.evidence.flow_id == 1


def test_aggregate_raises_only_when_no_message_did():
    sink = ListSink()
    ch = PolicyChecker(policy(P), sink)
    ch.observe(_flow())
    key = (1, 1, 6, 0, 1)
    agg = O.Aggregate("modbus", "modbus.write_single_register", "write", "unit=1/holding_registers/0+1", "request",
                      1, "10.0.3.5", "10.0.1.5", 502, 5, 60, 2.0, 3.0, 5, 60, 11, 42, key)
    ch.observe(agg)
    (f,) = sink.findings
    # the evidence is the key's latest frame of the interval (its ts), not frame 0
    assert f.rule == "policy.operation_denied" and f.evidence.frame == 42 and f.evidence.ts == 3.0
    ch.observe(agg)                                            # the next interval: already reported
    assert len(sink.findings) == 1
    msg = O.Message(4.0, 9, "modbus", "modbus.write_single_register", "write", "unit=1/holding_registers/5+1",
                    "request", 1, 1, "10.0.3.5", "10.0.1.5", 502, None, (1, 1, 6, 5, 1))
    ch.observe(msg)
    ch.observe(dataclasses.replace(agg, key=(1, 1, 6, 5, 1)))  # its aggregate: the message reported it
    assert [f.evidence.frame for f in sink.findings] == [42, 9]
    ch.observe(dataclasses.replace(msg, direction="response"))  # responses are the server's: not checked
    assert len(sink.findings) == 2


def test_asset_hook_and_group_destinations():
    pol = policy(P.replace("  ops: {networks: [10.0.3.0/24]}", "  ops: {assets: [hmi-7]}\n  lan: {networks: [10.9.0.0/16]}"))
    sink = ListSink()
    ch = PolicyChecker(pol, sink, asset_of=lambda ip, mac, vlan: "hmi-7" if ip == "192.168.9.9" else "")
    ch.observe(_flow(client="192.168.9.9"))
    assert sink.findings == []
    ch.observe(O.FlowStart(1.0, 8, 2, "udp", 0, "10.0.1.5", 5353, "224.0.0.251", 5353, "", "", False, "none", 0))
    ch.observe(O.FlowStart(1.0, 9, 3, "udp", 0, "10.0.1.5", 68, "10.0.1.255", 67, "", "", False, "none", 0))
    ch.observe(O.FlowStart(1.0, 9, 4, "udp", 0, "10.0.1.5", 68, "10.9.255.255", 67, "", "", False, "none", 0))
    assert sink.findings == []                                  # multicast / broadcast stay in the sender's zone
    ch.observe(O.FlowStart(1.0, 9, 5, "udp", 0, "10.0.1.5", 68, "10.9.255.254", 67, "", "", False, "none", 0))
    assert [f.dst_zone for f in sink.findings] == ["lan"]
