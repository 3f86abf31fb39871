"""Verdicts for flows, operations and OPC UA security modes; the verdict cache is invisible."""
from __future__ import annotations

import random

import pytest
from support.policyhelp import policy

from otwatch.sensor.policy.model import UNZONED
from otwatch.sensor.policy.verdict import Verdicts

P = """\
version: 1
zones:
  control: {networks: [10.0.1.0/24], intra_zone: deny}
  ops: {networks: [10.0.3.0/24]}
  dmz: {networks: [10.0.35.0/24]}
  iot: {networks: [10.0.7.0/24]}
conduits:
  polling:
    from: ops
    to: control
    allow:
      - protocol: modbus
        modbus:
          operations: [read, write]
          function_codes: [1-6, 16, 23]
          units: [1, 5-6]
          registers:
            holding_registers: [0-99]
            coils: [0-15]
      - protocol: modbus
        ports: [5020]
      - protocol: icmp
  plc-peer:
    from: control
    to: control
    allow:
      - protocol: modbus
        modbus: {operations: [read]}
  telemetry:
    from: iot
    to: dmz
    allow:
      - protocol: mqtt
        mqtt:
          publish: [plant/+/temp, "plant/line1/#"]
          subscribe: ["plant/cmd/#"]
      - protocol: opcua
        opcua:
          services: [Read]
          min_security_mode: Sign
      - protocol: opcua
        ports: [4841]
        opcua: {min_security_mode: SignAndEncrypt}
      - protocol: tcp
        ports: [8000-8080]
      - protocol: udp
        ports: [53]
  outside:
    from: unzoned
    to: dmz
    allow: [{protocol: any}]
"""


@pytest.fixture
def v():
    return Verdicts(policy(P))


def mb(op, fc, unit=1, *acc):
    return ("modbus", op, unit, fc, tuple(acc))


def test_flows(v):
    assert v.flow("ops", "ops", "tcp", 22).code == "intra_zone"                 # intra_zone: allow (default)
    assert v.flow("ops", "control", "tcp", 502).rule == "polling"
    assert v.flow("ops", "control", "tcp", 5020).allowed
    assert v.flow("ops", "control", "ip/1", 0).allowed                          # icmp
    assert v.flow("ops", "control", "ip/58", 0).allowed                         # icmpv6
    x = v.flow("ops", "control", "tcp", 22)
    assert (x.allowed, x.rule, x.code) == (False, "polling", "not_in_conduit")
    assert "does not allow tcp/22" in x.reason
    x = v.flow("control", "ops", "tcp", 502)
    assert (x.allowed, x.rule, x.code) == (False, "default", "no_conduit")
    assert x.reason == "no conduit from zone control to zone ops (default deny)"
    assert v.flow("control", "control", "tcp", 502).rule == "plc-peer"          # intra_zone: deny → conduit
    assert not v.flow("control", "control", "tcp", 80).allowed
    assert v.flow("iot", "dmz", "tcp", 8080).allowed and not v.flow("iot", "dmz", "tcp", 8081).allowed
    assert v.flow("iot", "dmz", "udp", 53).allowed and not v.flow("iot", "dmz", "udp", 54).allowed
    assert v.flow(UNZONED, "dmz", "udp", 9999).allowed                         # protocol: any
    assert not v.flow(UNZONED, UNZONED, "tcp", 1).allowed                       # unzoned is not a trusted zone


@pytest.mark.parametrize("opk,code", [
    (mb("read", 3, 1, ("holding_registers", 0, 9)), ""),
    (mb("write", 6, 5, ("holding_registers", 99, 99)), ""),
    (mb("read", 1, 6, ("coils", 0, 15)), ""),
    (mb("diagnostic", 8), "operation"),
    (mb("write", 15, 1, ("coils", 0, 3)), "function_code"),
    (mb("read", 3, 2, ("holding_registers", 0, 9)), "unit"),
    (mb("read", 3, 1, ("holding_registers", 95, 104)), "register"),               # crosses the end
    (mb("read", 4, 1, ("input_registers", 0, 1)), "register"),                    # table not listed
    (mb("read", 3, 1, ("holding_registers", -1, -1)), "register"),                # address unknown
    (mb("write", 23, 1, ("holding_registers", 0, 3), ("holding_registers", 100, 101)), "register"),  # FC 23 write part
    (mb("write", 23, 1, ("holding_registers", 0, 3), ("holding_registers", 10, 11)), ""),
])
def test_modbus_operations(v, opk, code):
    x = v.operation("ops", "control", "modbus", 502, opk)
    assert x.allowed is (code == "") and (x.code == code or code == "")


def test_modbus_other_port_rule_is_unrestricted_and_rules_are_alternatives(v):
    assert v.operation("ops", "control", "modbus", 5020, mb("program", 90)).allowed
    assert v.operation("ops", "control", "modbus", 502, mb("program", 90)).code == "operation"
    x = v.operation("ops", "control", "mqtt", 1883, ("publish", "a"))
    assert (x.allowed, x.code) == (False, "protocol")
    assert "does not allow mqtt on port 1883" in x.reason


def test_denial_names_conduit_and_rule(v):
    x = v.operation("ops", "control", "modbus", 502, mb("read", 3, 1, ("holding_registers", 500, 509)))
    assert x.rule == "polling"
    assert x.reason == "conduit polling rule 1: holding_registers 500-509 outside 0-99"


@pytest.mark.parametrize("opk,ok", [
    (("publish", "plant/line2/temp"), True),
    (("publish", "plant/line1/a/b"), True),
    (("publish", "plant/line2/pressure"), False),
    (("subscribe", ("plant/cmd/line1",)), True),
    (("subscribe", ("plant/cmd/#", "plant/cmd/+")), True),
    (("subscribe", ("plant/cmd/#", "#")), False),
    (("session", "mqtt.connect"), True),
])
def test_mqtt(v, opk, ok):
    assert v.operation("iot", "dmz", "mqtt", 1883, opk).allowed is ok


def test_opcua_services_and_modes(v):
    assert v.operation("iot", "dmz", "opcua", 4840, ("service", "Read")).allowed
    assert v.operation("iot", "dmz", "opcua", 4840, ("service", "CreateSession")).allowed   # session services
    x = v.operation("iot", "dmz", "opcua", 4840, ("service", "Write"))
    assert (x.allowed, x.code) == (False, "service")
    assert v.operation("iot", "dmz", "opcua", 4841, ("service", "Write")).allowed           # no services list
    assert v.operation("iot", "dmz", "opcua", 4840, ("encrypted", "opcua.encrypted_message")).allowed
    assert v.min_security_mode("iot", "dmz", 4840) == (2, "telemetry")
    assert v.min_security_mode("iot", "dmz", 4841) == (3, "telemetry")
    assert v.min_security_mode("ops", "ops", 4840) == (1, "")                               # inside a zone


def test_verdict_cache_is_invisible():
    """The same questions, asked in a random order, with the cache off, tiny and large: same answers."""
    pol = policy(P)
    zones = ["control", "ops", "dmz", "iot", UNZONED]
    rng = random.Random(14)
    qs = []
    for _ in range(3000):
        s, d = rng.choice(zones), rng.choice(zones)
        kind = rng.randrange(3)
        if kind == 0:
            qs.append(("flow", s, d, rng.choice(["tcp", "udp", "ip/1"]), rng.choice([22, 53, 502, 5020, 8000])))
        elif kind == 1:
            fc = rng.choice([1, 3, 6, 8, 16, 23, 90])
            a = rng.choice([0, 50, 95, 500])
            qs.append(("operation", s, d, "modbus", rng.choice([502, 5020]),
                       mb(rng.choice(["read", "write", "program"]), fc, rng.choice([1, 2, 5]),
                          ("holding_registers", a, a + rng.choice([0, 9])))))
        else:
            qs.append(("operation", s, d, "mqtt", 1883, ("publish", rng.choice(["plant/a/temp", "x", "plant/line1"]))))
    answers = []
    for cache_max in (0, 1, 7, 65536):
        vv = Verdicts(pol, cache_max)
        answers.append([getattr(vv, q[0])(*q[1:]) for q in qs])
        if cache_max == 65536:
            assert vv.hits > 0 and vv.misses < len(qs)          # the cache did answer
        if cache_max == 0:
            assert vv.hits == 0
    assert answers[0] == answers[1] == answers[2] == answers[3]
