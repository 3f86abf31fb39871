"""Operations past a link's key cap: not distinguished, so judged conservatively.

The kernels count new keys beyond ``limits.link_keys_max`` on a link direction
under one overflow key (Modbus ``(type, -2, -2, -2, -2)``, MQTT ``(type, -2)``)
whose unit, function code, registers or topic are unknown.  A conduit that does
not allow every such operation must report them (an attacker cannot hide a
write behind thousands of junk keys), with the first overflowed message's frame
as evidence; a conduit that allows everything must not.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from support.policyhelp import policy

from otwatch.parsers.limits import Limits
from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.pipeline import Pipeline, Settings
from otwatch.sensor.policy import PolicyChecker
from otwatch.sensor.policy.operations import OVERFLOW, describe, op_key

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)

MB_OVERFLOW = (1, -2, -2, -2, -2)
MQ_PUBLISH_OVERFLOW = (3, -2)
MQ_SUBSCRIBE_OVERFLOW = (8, -2)


def _policy(allow: str, proto: str = "modbus"):
    return policy(f"""\
        version: 1
        zones:
          control: {{networks: [10.10.1.0/24, 10.10.3.0/24]}}
          ops: {{networks: [10.10.9.0/24]}}
        conduits:
          c:
            from: ops
            to: control
            allow:
              - protocol: {proto}
        {allow}
        """)


def _flow(proto="modbus", port=502):
    return O.FlowStart(1.0, 1, 1, "tcp", 0, "10.10.9.66", 40000, "10.10.1.11", port, "", "", False, proto, 1)


def _agg(key, proto="modbus", kind="modbus.key_overflow", op="other", port=502):
    return O.Aggregate(proto, kind, op, "overflow", "request", 1, "10.10.9.66", "10.10.1.11", port,
                       5000, 60000, 2.0, 9.0, 5000, 60000, 0, 0, key)


def test_op_keys_name_the_overflow():
    assert op_key("modbus", "modbus.key_overflow", "other", MB_OVERFLOW) == (OVERFLOW, "modbus", "operations")
    assert op_key("mqtt", "mqtt.publish", "publish", MQ_PUBLISH_OVERFLOW) == (OVERFLOW, "mqtt", "publish")
    assert op_key("mqtt", "mqtt.subscribe", "subscribe", MQ_SUBSCRIBE_OVERFLOW) == (OVERFLOW, "mqtt", "subscribe")
    assert op_key("mqtt", "mqtt.puback", "other", (4, -2)) == ("session", "mqtt.puback")
    assert "not distinguished past the key cap" in describe(op_key("modbus", "", "other", MB_OVERFLOW))
    # the old reading: unit -2, function code 126 (a "program" code)
    assert op_key("modbus", "", "other", MB_OVERFLOW)[0] != "modbus"


@pytest.mark.parametrize("allow, denied", [
    ("", False),                                                         # Modbus, anything
    ("        modbus: {operations: [read]}", True),                       # a write may hide in it
    ("        modbus: {operations: [read, write, diagnostic, program, other]}", False),
    ("        modbus: {function_codes: [1-6, 15, 16]}", True),
    ("        modbus: {function_codes: [1-127]}", False),
    ("        modbus: {units: [1]}", True),
    ("        modbus: {registers: {holding_registers: [0-65535]}}", True),  # other tables not allowed
])
def test_modbus_overflow_is_denied_unless_every_operation_is_allowed(allow, denied):
    sink = ListSink()
    ch = PolicyChecker(_policy(allow), sink)
    ch.observe(_flow())
    ch.observe(_agg(MB_OVERFLOW))
    assert bool(sink.findings) == denied
    if denied:
        (f,) = sink.findings
        assert f.rule == "policy.operation_denied" and f.severity == "high" and f.technique == "T0855"
        assert f.details["code"] == "key_overflow" and f.details["overflow"] == "operations"
        assert "not distinguished" in f.message and "past the link's key cap" in f.details["reason"]
        assert f.details["count"] == 5000


@pytest.mark.parametrize("allow, key, denied", [
    ("", MQ_PUBLISH_OVERFLOW, False),
    ("        mqtt: {publish: ['plant/#']}", MQ_PUBLISH_OVERFLOW, True),
    ("        mqtt: {publish: ['#']}", MQ_PUBLISH_OVERFLOW, False),
    ("        mqtt: {publish: ['plant/#']}", MQ_SUBSCRIBE_OVERFLOW, False),     # subscribe not restricted
    ("        mqtt: {subscribe: ['plant/#']}", MQ_SUBSCRIBE_OVERFLOW, True),
])
def test_mqtt_overflow(allow, key, denied):
    sink = ListSink()
    ch = PolicyChecker(_policy(allow, "mqtt"), sink)
    ch.observe(_flow("mqtt", 1883))
    kind = "mqtt.publish" if key[0] == 3 else "mqtt.subscribe"
    ch.observe(_agg(key, "mqtt", kind, kind.split(".")[1], 1883))
    assert bool(sink.findings) == denied


def test_evidence_is_the_key_overflow_anomaly_and_reported_once():
    sink = ListSink()
    ch = PolicyChecker(_policy("        modbus: {operations: [read]}"), sink)
    ch.observe(_flow())
    ch.observe(O.Anomaly(5.0, 4242, "modbus.key_overflow", "modbus", 1, 3, "client", "more than 4096 keys"))
    ch.observe(O.Anomaly(6.0, 5000, "modbus.key_overflow", "modbus", 1, 3, "server", "more than 4096 keys"))
    ch.observe(_agg(MB_OVERFLOW))
    ch.observe(_agg(MB_OVERFLOW))       # the next interval
    (f,) = sink.findings
    assert (f.evidence.frame, f.evidence.ts, f.evidence.flow_id) == (4242, 5.0, 3)


def test_a_write_hidden_behind_a_register_sweep_is_reported(tmp_path):
    """A real sweep capture through the pipeline with a small key cap: the reads past the cap
    are one denied overflow on a read-only conduit, evidence at the overflow; none when the
    conduit allows every Modbus operation."""
    cap = tmp_path / "sweep.pcap"
    make_hostile.build("modbus-registers", str(cap), 3000, quiet=True)
    limits = Limits(link_keys_max=64, coverage_max_runs=8)

    def run(pol):
        sink = ListSink()
        ch = PolicyChecker(pol, sink)
        seen = []

        class Tap:
            def observe(self, o):
                if isinstance(o, O.Anomaly) and o.id == "modbus.key_overflow":
                    seen.append(o)

        p = Pipeline([Tap(), ch], Settings(limits=limits))
        p.run_file(str(cap))
        p.finish()
        return sink.findings, seen

    found, anomalies = run(_policy("        modbus: {operations: [read]}"))
    (f,) = [f for f in found if f.details.get("code") == "key_overflow"]
    first = min(a.frame for a in anomalies if a.side == "client")
    assert f.evidence.frame == first and f.details["count"] > 0
    assert all(f.details.get("code") == "key_overflow" for f in found)   # the reads themselves are allowed
    found, _ = run(_policy(""))
    assert found == []


def test_flows_held_back_by_the_scan_budget_are_still_judged(tmp_path):
    """A host and port scan past the engine's scan budget: flows without a flow.start are judged
    from the scan summary's endpoints (evidence: the summary's first frame); endpoints it could not
    list are one 'not distinguished' finding; a zone allowed to reach everything raises nothing."""
    from support import capbuild as cb

    def seg(src, dst, sport, dport, flags, smac, dmac):
        return cb.eth(smac, dmac, 0x0800, cb.ipv4(src, dst, 6, cb.tcp(sport, dport, 1000, 0, flags)))

    pkts = []
    for i in range(300):
        dst, port = f"10.10.1.{1 + i // 3}", (502, 102, 44818)[i % 3]
        pkts.append(seg("10.10.9.66", dst, 40000 + i, port, "S", "08:00:27:66:66:01", "00:80:f4:10:00:01"))
    cap = tmp_path / "scan.pcap"
    cap.write_bytes(cb.pcap([(1_700_000_000.0 + i * 0.001, p) for i, p in enumerate(pkts)]))
    limits = Limits(scan_flows_per_source=20)

    def run(pol):
        sink = ListSink()
        p = Pipeline([PolicyChecker(pol, sink, source=str(cap))], Settings(limits=limits))
        p.run_file(str(cap))
        p.finish()
        return sink.findings

    found = run(_policy(""))       # ops -> control: Modbus only
    denied = {(f.dst, f.port) for f in found if f.details.get("code") != "not_distinguished"}
    # every denied endpoint of the 20 reported flows and the 256 listed in the summary; the
    # other 24 flows are the 'not distinguished' finding
    want = {(f"10.10.1.{1 + i // 3}", (502, 102, 44818)[i % 3]) for i in range(20 + 256) if i % 3}
    assert denied == want
    held = [f for f in found if f.details.get("summary")]
    assert held and all(f.evidence.frame == 1 for f in held)
    (nd,) = [f for f in found if f.details.get("code") == "not_distinguished"]
    assert nd.details["count"] == 280 - 256
    allow_all = policy("""\
        version: 1
        zones:
          control: {networks: [10.10.1.0/24]}
          ops: {networks: [10.10.9.0/24]}
        conduits:
          c: {from: ops, to: control, allow: [{protocol: any}]}
          u: {from: ops, to: unzoned, allow: [{protocol: any}]}
        """)
    assert run(allow_all) == []
