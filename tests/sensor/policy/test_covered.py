"""Modbus ranges counted under a link's lump key: no violation is lost.

The Modbus kernel counts a register request whose addresses all lie inside the
link's exact coverage of its unit and function code, and that has no key of its
own, under one lump key ``(type, unit, fc, -4, -4)`` (docs/protocols/modbus.md,
"Register coverage").  Its addresses were all named before, on that link, by
requests judged on their own.  Every test runs one capture twice: as the
sensor runs it (lump keys) and with every message reported in full (every
request judged on its own range: the per-range reference), and compares the
findings.
"""
from __future__ import annotations

import random
import struct

import pytest
from support import tcpconv as tc
from support.policyhelp import policy

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.pipeline import Pipeline, Settings
from otwatch.sensor.policy import PolicyChecker
from otwatch.sensor.policy.operations import COVERED, op_key

LUMP_READ = (1, 1, 3, -4, -4)
LUMP_WRITE = (1, 1, 16, -4, -4)


def _capture(tmp_path) -> str:
    """An HMI (10.0.0.1) on a PLC (10.0.0.2): reads of two blocks and writes of two blocks, each
    first whole (a key of its own), then 300 random requests inside what was named before."""
    conv = tc.Conv(502).handshake()
    tid = [0]

    def ask(pdu: bytes, rsp: bytes):
        tid[0] += 1
        conv.send(0, struct.pack(">HHHB", tid[0], 0, len(pdu) + 1, 1) + pdu)
        conv.send(1, struct.pack(">HHHB", tid[0], 0, len(rsp) + 1, 1) + rsp)

    def read(a, q):
        ask(struct.pack(">BHH", 3, a, q), bytes([3, 2 * q]) + bytes(2 * q))

    def write(a, q):
        ask(struct.pack(">BHHB", 16, a, q, 2 * q) + bytes(2 * q), struct.pack(">BHH", 16, a, q))

    read(0, 50)
    read(40, 110)             # 40..149
    write(10, 20)             # 10..29
    write(200, 10)            # 200..209
    rnd = random.Random(12)
    for _ in range(300):
        if rnd.random() < 0.5:
            a = rnd.randrange(0, 140)
            read(a, rnd.randrange(1, min(150 - a, 125)))
        else:
            lo, hi = rnd.choice(((10, 30), (200, 210)))
            a = rnd.randrange(lo, hi)
            write(a, rnd.randrange(1, hi - a + 1))
    conv.close()
    return tc.write(tmp_path, conv.pkts, "lumps.pcap")


def _findings(path: str, pol, detail_all: bool):
    sink, keys = ListSink(), []

    class Keys:
        def observe(self, o):
            if isinstance(o, O.Aggregate) and o.direction == "request":
                keys.append(o.key)

    p = Pipeline([Keys(), PolicyChecker(pol, sink, source=path)],
                 Settings(detail_all=detail_all))
    p.run_file(path)
    p.finish()
    return sink.findings, keys


def _policy(allow: str):
    return policy(f"""\
        version: 1
        zones:
          hmi: {{networks: [10.0.0.1/32]}}
          plc: {{networks: [10.0.0.2/32]}}
        conduits:
          c:
            from: hmi
            to: plc
            allow:
{allow}
        """)


ONE_RULE = """\
              - protocol: modbus
                modbus: {registers: {holding_registers: [0-149]}}"""
TWO_RULES = """\
              - protocol: modbus
                modbus: {operations: [read], registers: {holding_registers: [0-59]}}
              - protocol: modbus
                modbus: {operations: [read], registers: {holding_registers: [40-149]}}
              - protocol: modbus
                modbus: {operations: [write], registers: {holding_registers: [0-99, 200-209]}}"""
READ_ONLY = """\
              - protocol: modbus
                modbus: {operations: [read]}"""
EVERYTHING = """\
              - protocol: modbus"""


def _denied(findings) -> set:
    return {(f.rule, f.src, f.dst, f.details["op"]) for f in findings}


@pytest.mark.parametrize("allow", [ONE_RULE, TWO_RULES, READ_ONLY, EVERYTHING])
def test_lumped_ranges_lose_no_violation(tmp_path, allow):
    path = _capture(tmp_path)
    pol = _policy(allow)
    got, keys = _findings(path, pol, False)
    ref, _ = _findings(path, pol, True)
    assert LUMP_READ in keys and LUMP_WRITE in keys          # the capture does lump
    assert _denied(got) == _denied(ref)
    if allow == ONE_RULE:
        # writes to 200..209 are denied with the register code; reads all allowed
        assert {f.key for f in got} == {f.key for f in ref}
        assert {f.details["code"] for f in got} == {"register"}
        assert {f.details["op"] for f in got} == {"write"}
    if allow == TWO_RULES:
        # per range, a read straddling 0-59 and 40-149 (e.g. 30..69) is allowed by no single rule;
        # counted together it is "not distinguished" — reported, never lost
        assert any(f.details["code"] == "register" for f in ref)
        (nd,) = [f for f in got if f.details["code"] == "not_distinguished"]
        assert nd.details["op"] == "read" and nd.details["kind"] == "modbus.read_holding_registers"
        assert "several rules together" in nd.details["reason"]
        assert not any(f.details["op"] == "write" for f in got)
    if allow == READ_ONLY:
        assert {f.key for f in got} == {f.key for f in ref}
        assert {f.details["code"] for f in got} == {"operation"}
    if allow == EVERYTHING:
        assert got == [] and ref == []


def test_lump_op_key_and_verdicts():
    assert op_key("modbus", "modbus.read_holding_registers", "read", LUMP_READ) == (
        COVERED, "modbus", "read", 1, 3, "holding_registers")
    from otwatch.sensor.policy.verdict import Verdicts
    v = Verdicts(_policy(ONE_RULE))
    ok = v.operation("hmi", "plc", "modbus", 502, (COVERED, "modbus", "write", 1, 16, "holding_registers"))
    assert ok.allowed and ok.code == "covered"
    no = v.operation("hmi", "plc", "modbus", 502, (COVERED, "modbus", "read", 1, 4, "input_registers"))
    assert not no.allowed and no.code == "register"          # the table is not allowed at all
    v = Verdicts(_policy(TWO_RULES))
    assert v.operation("hmi", "plc", "modbus", 502, (COVERED, "modbus", "write", 1, 16, "holding_registers")).allowed
    nd = v.operation("hmi", "plc", "modbus", 502, (COVERED, "modbus", "read", 1, 3, "holding_registers"))
    assert not nd.allowed and nd.code == "not_distinguished"
    v = Verdicts(_policy(READ_ONLY))
    no = v.operation("hmi", "plc", "modbus", 502, (COVERED, "modbus", "write", 1, 16, "holding_registers"))
    assert not no.allowed and no.code == "operation"


def test_a_draft_suggested_from_lumped_traffic_raises_nothing_on_it(tmp_path):
    """``rules suggest`` learns register spans from the ranges with keys of their own; the lumped
    ranges inside them are then allowed by the one rule of the draft."""
    from otwatch.sensor.policy import parse_policy, suggest_policy
    from otwatch.sensor.policy.observed import PairCollector

    path = _capture(tmp_path)
    c = PairCollector()
    p = Pipeline([c])
    p.run_file(path)
    p.finish()
    text = suggest_policy(c.seen(), zones="host")
    got, keys = _findings(path, parse_policy(text), False)
    assert LUMP_READ in keys and got == []
    assert "holding_registers: [0-149, 200-209]" in text.replace("'", "")


def test_fc23_lump_under_rules_with_different_registers_is_not_distinguished():
    """FC 23 names two ranges: each inside a span one rule allows is not enough (rule 1 may allow the
    read, rule 2 the write, and neither the request), so several register sets make it undistinguished."""
    from otwatch.sensor.policy.verdict import Verdicts
    two = Verdicts(_policy("""\
              - protocol: modbus
                modbus: {registers: {holding_registers: [0-99]}}
              - protocol: modbus
                modbus: {registers: {holding_registers: [200-299]}}"""))
    k = (COVERED, "modbus", "write", 1, 23, "holding_registers")
    v = two.operation("hmi", "plc", "modbus", 502, k)
    assert not v.allowed and v.code == "not_distinguished"
    # per range: read 10-20 inside rule 1, write 210-220 inside rule 2, allowed by neither
    assert not two.operation("hmi", "plc", "modbus", 502,
                             ("modbus", "write", 1, 23, (("holding_registers", 10, 20),
                                                         ("holding_registers", 210, 220)))).allowed
    # the same spans for FC 16: a range lies inside one merged span, so one rule allows it
    assert two.operation("hmi", "plc", "modbus", 502, k[:4] + (16, "holding_registers")).allowed
    one = Verdicts(_policy(ONE_RULE))
    assert one.operation("hmi", "plc", "modbus", 502, k).allowed
