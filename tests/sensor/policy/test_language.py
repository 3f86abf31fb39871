"""Every construct of the policy language, parsed into the model (docs/rules.md shows each)."""
from __future__ import annotations

import ipaddress

from support.policyhelp import BASE, policy

from otwatch.sensor.policy.model import SECURITY_MODES, UNZONED


FULL = """\
version: 1
name: plant
description: two lines
zones:
  control:
    description: PLCs
    level: 1
    security_level: 3
    networks: [10.0.1.0/24, 10.0.9.9, "fd00::/64"]
    vlans: [10, "11"]
    macs: ["00-80-F4-0A-00-0B", 10:10:10:10:10:10, 0080.f40a.000c]
    assets: ["mac:02:00:00:00:00:01", "ip:10.0.7.7@vlan5", "plc-7"]
    intra_zone: deny
  dmz:
    level: 3.5
    networks: 10.0.35.0/24
  ops:
    networks: [10.0.3.0/24]
conduits:
  polling:
    description: HMI polls
    from: [ops, dmz]
    to: control
    security_level: 2
    allow:
      - protocol: modbus
        modbus:
          operations: [read, diagnostic]
          function_codes: [1-4, 43]
          units: [1, 10-12]
          registers:
            holding_registers: [0-99, 200]
            coils: [0-15]
      - protocol: mqtt
        ports: [1883, 8883]
        mqtt:
          publish: [plant/+/temp, plant/line1/#]
          subscribe: []
      - protocol: opcua
        opcua:
          services: [Read, Browse, CreateSession]
          min_security_mode: SignAndEncrypt
      - protocol: tcp
        ports: [22, 3000-3010]
      - protocol: udp
      - protocol: icmp
  outside:
    from: unzoned
    to: dmz
    allow:
      - protocol: any
detections:
  policy.flow_denied:
    severity: critical
    allow: [10.0.3.7, 10.0.4.0/24, dmz]
  policy.operation_denied:
    enabled: false
"""


def test_top_level():
    p = policy(FULL)
    assert (p.version, p.name, p.description, p.path) == (1, "plant", "two lines", "p.yaml")
    assert list(p.zones) == ["control", "dmz", "ops"]


def test_zone_fields():
    z = policy(FULL).zones["control"]
    assert (z.description, z.level, z.security_level, z.intra_zone, z.line) == ("PLCs", 1, 3, "deny", 5)
    assert z.networks == (ipaddress.ip_network("10.0.1.0/24"), ipaddress.ip_network("10.0.9.9/32"),
                          ipaddress.ip_network("fd00::/64"))
    assert z.vlans == (10, 11)                       # a quoted number is a number
    # MACs in any common spelling, normalised; 10:10:... is not read as a YAML base-60 integer
    assert z.macs == ("00:80:f4:0a:00:0b", "10:10:10:10:10:10", "00:80:f4:0a:00:0c")
    assert z.assets == ("mac:02:00:00:00:00:01", "ip:10.0.7.7@vlan5", "plc-7")
    dmz = policy(FULL).zones["dmz"]
    assert dmz.level == 3.5 and dmz.networks == (ipaddress.ip_network("10.0.35.0/24"),)   # one value = a list
    assert policy(FULL).zones["ops"].intra_zone == "allow"    # the default


def test_conduit_and_rules():
    p = policy(FULL)
    c = p.conduits[0]
    assert (c.name, c.sources, c.targets, c.security_level, c.description) == \
        ("polling", ("ops", "dmz"), ("control",), 2, "HMI polls")
    mb, mq, ua, tcp, udp, icmp = c.rules
    assert (mb.protocol, mb.ports.spans, mb.index) == ("modbus", ((502, 502),), 1)   # default port
    assert mb.modbus.operations == {"read", "diagnostic"}
    assert mb.modbus.function_codes.spans == ((1, 4), (43, 43))
    assert mb.modbus.units.spans == ((1, 1), (10, 12))
    assert mb.modbus.registers["holding_registers"].spans == ((0, 99), (200, 200))
    assert set(mb.modbus.registers) == {"holding_registers", "coils"}
    assert mq.ports.spans == ((1883, 1883), (8883, 8883))
    assert mq.mqtt.publish == ("plant/+/temp", "plant/line1/#") and mq.mqtt.subscribe == ()
    assert ua.opcua.services == {"Read", "Browse"}             # session services are implied
    assert ua.opcua.min_security_mode == SECURITY_MODES["SignAndEncrypt"]
    assert tcp.ports.spans == ((22, 22), (3000, 3010))
    assert udp.ports is None and icmp.ports is None            # any port
    assert p.conduits[1].sources == (UNZONED,) and p.conduits[1].rules[0].protocol == "any"


def test_defaults_mean_unrestricted():
    r = policy(BASE).conduits[0].rules[0]
    assert r.modbus is None and r.mqtt is None and r.opcua is None


def test_detections():
    d = policy(FULL).detections
    fd = d["policy.flow_denied"]
    assert fd.severity == "critical" and fd.enabled is None   # not written: the catalogue's default (on)
    assert fd.allows("10.0.3.7") and fd.allows("10.0.4.9") and not fd.allows("10.0.3.8")
    assert fd.allows("", zone="dmz") and not fd.allows("", zone="ops")
    assert d["policy.operation_denied"].enabled is False


def test_empty_conduits_and_detections_sections():
    p = policy("version: 1\nzones:\n  a:\n    vlans: [2]\nconduits:\ndetections:\n")
    assert p.conduits == () and p.detections == {}


def test_anchors_and_aliases():
    p = policy("""\
        version: 1
        zones:
          a: {networks: [10.0.1.0/24]}
          b: {networks: [10.0.2.0/24]}
        conduits:
          one:
            from: a
            to: b
            allow: &read [{protocol: modbus, modbus: {operations: [read]}}]
          two:
            from: b
            to: a
            allow: *read
        """)
    assert p.conduits[0].rules == p.conduits[1].rules


def test_shipped_demo_policy_is_valid():
    from pathlib import Path

    from otwatch.sensor.policy import load_policy

    root = Path(__file__).resolve().parents[3]
    p = load_policy(root / "rules" / "demo-plant.yaml")
    assert set(p.zones) == {"control", "supervisory", "engineering", "operations", "field-iot"}


def test_demo_policy_ships_as_package_data():
    from importlib.resources import files

    assert files("otwatch.rules").joinpath("demo-plant.yaml").is_file()
