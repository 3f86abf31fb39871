"""The alert rules the policy raises: ids, default severity, ATT&CK for ICS, meaning.

The alerts catalogue (otwatch.sensor.alerts) lists these too; this table is the
policy's own source for them (one place that says what ``policy.*`` means).
Severity may depend on what was attempted (``severity_for``); a policy's
``detections`` section overrides it.

ATT&CK for ICS techniques (attack.mitre.org/techniques/ics/, checked 2026-12):

* T0855 Unauthorized Command Message: commands (writes, publishes, OPC UA
  Write/Call) sent where no conduit allows them.
* T0843 Program Download: program/firmware-class operations (Modbus FC 90 UMAS,
  FC 9/10/13/14/91/125/126).
* T0888 Remote System Information Discovery: diagnostic reads such as FC 43/14
  device identification or FC 17 report server id.
* T0801 Monitor Process State: reads and subscriptions that collect process values.
* T0869 Standard Application Layer Protocol: an OT protocol flow across a zone
  boundary no conduit opens.
* T0886 Remote Services: any other TCP/UDP flow across a boundary (how
  adversaries "move between assets and network segments").
"""
from __future__ import annotations

from ..alerts.model import Rule

FLOW_DENIED = "policy.flow_denied"
OPERATION_DENIED = "policy.operation_denied"
SECURITY_MODE = "policy.security_mode_below_minimum"

RULES = {
    FLOW_DENIED: Rule(FLOW_DENIED, "high", "policy", "A flow between zones that no conduit allows", "T0869",
                      ("sources", "window")),
    OPERATION_DENIED: Rule(OPERATION_DENIED, "high", "policy",
                           "An operation (function code, register, topic, service) a conduit does not allow", "T0855",
                           ("sources", "window")),
    SECURITY_MODE: Rule(SECURITY_MODE, "medium", "policy",
                        "An OPC UA secure channel below the conduit's minimum security mode", ""),
}

OP_TECHNIQUE = {"write": "T0855", "program": "T0843", "diagnostic": "T0888", "read": "T0801",
                "subscribe": "T0801", "publish": "T0855", "call": "T0855"}
"""ATT&CK technique of a denied operation by its class (observations' ``op``); others: none."""
OP_SEVERITY = {"program": "critical", "write": "high", "publish": "high", "call": "high"}
"""A denied program download is worse than a denied write, which is worse than a denied read."""
OP_SEVERITY_DEFAULT = "medium"
OVERFLOW_SEVERITY = "high"
"""Operations past a link's key cap (unit, function code, registers or topic unknown) on a conduit
that does not allow every operation: any of them may be a write, so they are judged as one (T0855)."""
OVERFLOW_TECHNIQUE = "T0855"
OT_FLOW_SEVERITY = "high"       # an OT protocol across a boundary
OTHER_FLOW_SEVERITY = "medium"  # any other flow across a boundary


def flow_technique(ot_protocol: bool, transport: str) -> str:
    if ot_protocol:
        return "T0869"
    return "T0886" if transport in ("tcp", "udp") else ""


__all__ = ["Rule", "RULES", "FLOW_DENIED", "OPERATION_DENIED", "SECURITY_MODE", "OP_TECHNIQUE",
           "OP_SEVERITY", "OP_SEVERITY_DEFAULT", "OVERFLOW_SEVERITY", "OVERFLOW_TECHNIQUE", "OT_FLOW_SEVERITY",
           "OTHER_FLOW_SEVERITY", "flow_technique"]
