"""The policy as data: zones, conduits, rules, detection settings (all frozen).

Built by ``loader.load_policy`` from a YAML file (docs/rules.md); read by
``zones.ZoneMap``, ``verdict.Verdicts`` and ``checker.PolicyChecker``.  A field
that is ``None`` means "not restricted"; an empty collection means "nothing
allowed".  ``line`` fields keep where each item was written, so findings and
errors can point back into the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..alerts.settings import RuleSetting
from .ranges import RangeSet

UNZONED = "unzoned"
"""The implicit zone of every address no zone claims; a conduit may name it."""

PROTOCOLS = ("modbus", "mqtt", "opcua", "tcp", "udp", "icmp", "any")
"""What a conduit rule can allow: an OT protocol (its operations are checked), a
bare transport (flows only), or ``any`` (every flow and every operation)."""
OT_PROTOCOLS = ("modbus", "mqtt", "opcua")
DEFAULT_PORTS = {"modbus": (502,), "mqtt": (1883,), "opcua": (4840,)}
"""IANA ports (mbap 502, mqtt 1883, opcua-tcp 4840): a rule's ports when it names none."""
TRANSPORT_OF = {"modbus": "tcp", "mqtt": "tcp", "opcua": "tcp", "tcp": "tcp", "udp": "udp", "icmp": "ip/1"}
"""FlowStart.transport each rule protocol matches (ICMP flows are ``ip/1``)."""

MODBUS_OPERATIONS = ("read", "write", "diagnostic", "program", "other")
"""Operation classes as observations name them (docs/observations.md ``op``); ``other``
is user-defined and unknown function codes."""
MODBUS_TABLES = ("coils", "discrete_inputs", "holding_registers", "input_registers")

SECURITY_MODES = {"None": 1, "Sign": 2, "SignAndEncrypt": 3}
"""OPC UA MessageSecurityMode [Part 4 §7.20], by the name a policy uses."""
SECURITY_MODE_NAMES = {v: k for k, v in SECURITY_MODES.items()}

OPCUA_SESSION_SERVICES = frozenset({
    "FindServers", "FindServersOnNetwork", "GetEndpoints", "OpenSecureChannel", "CloseSecureChannel",
    "CreateSession", "ActivateSession", "CloseSession", "Cancel"})
"""Services every OPC UA client needs to connect: always allowed where OPC UA is
allowed (``services`` lists what a client may do once connected)."""

PURDUE_LEVELS = (0, 1, 2, 3, 3.5, 4, 5)
"""Purdue reference model levels (3.5 = the industrial DMZ)."""
SECURITY_LEVELS = (0, 1, 2, 3, 4)
"""IEC 62443-3-3 security levels (SL 0 .. SL 4); a zone's target SL (SL-T)."""


@dataclass(frozen=True)
class Zone:
    name: str
    line: int = 0
    description: str = ""
    level: float | None = None            # Purdue level
    security_level: int | None = None     # IEC 62443 SL-T
    networks: tuple = ()                  # ipaddress networks
    vlans: tuple = ()
    macs: tuple = ()                      # normalised "aa:bb:cc:dd:ee:ff"
    assets: tuple = ()                    # inventory asset ids ("mac:...", "ip:...")
    intra_zone: str = "allow"             # "allow" | "deny": traffic between two members


@dataclass(frozen=True)
class ModbusAllow:
    operations: frozenset | None = None
    function_codes: RangeSet | None = None
    units: RangeSet | None = None
    registers: dict | None = None         # table -> RangeSet (only listed tables may be touched)


@dataclass(frozen=True)
class MQTTAllow:
    publish: tuple | None = None          # topic filters a client may publish to
    subscribe: tuple | None = None        # topic filters a client may subscribe with (covered by)


@dataclass(frozen=True)
class OPCUAAllow:
    services: frozenset | None = None     # service names beyond OPCUA_SESSION_SERVICES
    min_security_mode: int | None = None  # SECURITY_MODES value


@dataclass(frozen=True)
class Rule:
    protocol: str
    ports: RangeSet | None = None         # None: any port (icmp/any); else the server ports
    modbus: ModbusAllow | None = None
    mqtt: MQTTAllow | None = None
    opcua: OPCUAAllow | None = None
    line: int = 0
    index: int = 0                        # 1-based position within its conduit


@dataclass(frozen=True)
class Conduit:
    name: str
    sources: tuple                        # zone names (clients / initiators)
    targets: tuple                        # zone names (servers)
    rules: tuple                          # Rule, ...
    line: int = 0
    description: str = ""
    security_level: int | None = None


@dataclass(frozen=True)
class Policy:
    version: int
    zones: dict                           # name -> Zone (file order)
    conduits: tuple                       # Conduit, ...
    detections: dict                      # rule id or `prefix.*` -> RuleSetting (sensor/alerts/settings.py)
    name: str = ""
    description: str = ""
    path: str = ""

    def detection(self, rule: str) -> RuleSetting | None:
        """The rule's setting: its own entry, else the longest `prefix.*` that matches it."""
        from ..alerts.settings import lookup

        return lookup(self.detections, rule)


__all__ = ["UNZONED", "PROTOCOLS", "OT_PROTOCOLS", "DEFAULT_PORTS", "TRANSPORT_OF", "MODBUS_OPERATIONS",
           "MODBUS_TABLES", "SECURITY_MODES", "SECURITY_MODE_NAMES", "OPCUA_SESSION_SERVICES",
           "PURDUE_LEVELS", "SECURITY_LEVELS", "Zone", "ModbusAllow", "MQTTAllow", "OPCUAAllow", "Rule",
           "Conduit", "RuleSetting", "Policy"]
