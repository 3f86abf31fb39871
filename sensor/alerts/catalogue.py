"""The rule catalogue: every alert rule id, its default severity, category, title and ATT&CK technique.

Contract
--------
* ``RULES[rule_id] -> Rule``.  Rule ids are stable dotted names, never renamed
  once shipped; the prefix names the producer family: ``baseline.*`` (departures
  from the learned baseline), ``policy.*`` (segmentation policy), ``posture.*``
  (inventory posture findings, ``posture.<finding id>``), ``protocol.*``
  (protocol anomalies), ``recon.*`` (scans and sweeps), ``dos.*`` (floods and
  resource exhaustion), ``auth.*`` (credential guessing), ``identity.*``
  (device identity changed), ``command.*`` (commands from a host that
  should not send them).
* A producer builds its findings with ``finding(rule_id, key, message,
  evidence, ...)``: severity, category and technique come from here, so a
  producer never spells them itself.  The aggregator (``aggregate.AlertBook``)
  then applies the operator's settings (disabled rules, severity overrides).
* ``ANOMALY_RULES`` maps every engine and protocol anomaly id that is worth an
  alert to its rule; ``IGNORED_ANOMALIES`` lists the others with the reason (a
  test checks that every anomaly id in ``parsers/*/spec.py``, the OPC UA kernel
  and docs/observations.md is in exactly one of the two).
* A rule whose ``default_enabled`` is False (``FINDING_ONLY``: the
  configuration posture findings) is a finding only unless the settings turn
  it on (``settings.AlertSettings.enabled``); every other rule is on unless
  the settings turn it off.
* Every rule has a section in docs/alerts.md (what, why, evidence, ATT&CK, how
  to tune); a test fails when one is missing or when code uses a rule id that
  is not here.

ATT&CK for ICS techniques
-------------------------
``TECHNIQUES`` is the table the rules cite: MITRE ATT&CK for ICS
(https://attack.mitre.org/techniques/ics/), ids and names as published on each
technique's page ``https://attack.mitre.org/techniques/<id>/`` and in MITRE's
STIX data (``mitre-attack/attack-stix-data``, ``ics-attack/ics-attack.json``).
A rule's technique is the one the detected behaviour is an instance of (a
register write is T0836 Modify Parameter) or, for posture findings, the one the
weakness makes possible (credentials in clear: T0842 Network Sniffing); rules
where none fits carry ``""``.
"""
from __future__ import annotations

from dataclasses import replace

from .model import CATEGORIES, SEVERITIES, Evidence, Finding, Rule

ATTACK_URL = "https://attack.mitre.org/techniques/{}/"
ATTACK_FRAMEWORK = "MITRE ATT&CK for ICS"

TECHNIQUES: dict[str, str] = {
    "T0801": "Monitor Process State",
    "T0806": "Brute Force I/O",
    "T0812": "Default Credentials",
    "T0814": "Denial of Service",
    "T0815": "Denial of View",
    "T0816": "Device Restart/Shutdown",
    "T0830": "Adversary-in-the-Middle",
    "T0836": "Modify Parameter",
    "T0839": "Module Firmware",
    "T0842": "Network Sniffing",
    "T0843": "Program Download",
    "T0845": "Program Upload",
    "T0846": "Remote System Discovery",
    "T0848": "Rogue Master",
    "T0849": "Masquerading",
    "T0855": "Unauthorized Command Message",
    "T0856": "Spoof Reporting Message",
    "T0857": "System Firmware",
    "T0858": "Change Operating Mode",
    "T0859": "Valid Accounts",
    "T0861": "Point & Tag Identification",
    "T0869": "Standard Application Layer Protocol",
    "T0885": "Commonly Used Port",
    "T0886": "Remote Services",
    "T0888": "Remote System Information Discovery",
}


_r = Rule
"""The rows below: (id, severity, category, title, technique)."""


def _baseline_rules() -> list[Rule]:
    """The baseline's own table (sensor/baseline/rules.py), which the baseline package owns."""
    from ..baseline.rules import RULES as B

    return list(B.values())


_BASELINE = _baseline_rules()

def _policy_rules() -> list[Rule]:
    """The policy's own table (sensor/policy/catalogue.py), which the policy package owns."""
    from ..policy.catalogue import RULES as P

    return list(P.values())


_POLICY = _policy_rules()

# posture.<inventory finding id>: severities follow sensor/inventory/posture.py FINDINGS (a test checks it).
# Configuration weaknesses (how the plant is set up, true of every benign packet) are findings only by default
# (``_config``: Rule.default_enabled False): the inventory keeps them with their evidence (``otwatch inventory
# show``, the TUI's asset detail), as Nozomi's vulnerabilities/insights and Defender for IoT's recommendations do;
# the detection settings or ``--posture-alerts`` raise them as alerts.  What a client *did* (credentials sent in
# clear, a '#' subscription, Modbus across zones) stays an alert.


def _config(*row) -> Rule:
    return replace(_r(*row), default_enabled=False)


_POSTURE = [
    _config("posture.modbus.no_authentication", "medium", "posture",
            "Modbus/TCP server reachable without authentication", "T0855"),
    _r("posture.modbus.cross_zone", "high", "posture", "Modbus/TCP reached from outside its zone", "T0886"),
    _config("posture.mqtt.anonymous_access", "high", "posture", "MQTT broker accepts anonymous clients", "T0886"),
    _r("posture.mqtt.cleartext_credentials", "high", "posture", "MQTT credentials sent in clear", "T0842"),
    _r("posture.mqtt.wildcard_subscription", "medium", "posture", "MQTT client subscribes to '#'", "T0801"),
    _config("posture.opcua.security_policy_none", "medium", "posture", "OPC UA endpoint with SecurityPolicy None",
            "T0830"),
    _config("posture.opcua.deprecated_policy", "medium", "posture", "OPC UA deprecated SHA-1 security policy",
            "T0830"),
    _config("posture.opcua.anonymous_token", "medium", "posture", "OPC UA anonymous user token", "T0886"),
    _r("posture.opcua.cleartext_username", "high", "posture", "OPC UA user name and password in clear", "T0842"),
    _config("posture.opcua.cleartext_username_offered", "high", "posture",
            "OPC UA endpoint offers a user name token without encryption", "T0842"),
    _config("posture.opcua.certificate_expired", "high", "posture", "OPC UA certificate outside its validity",
            "T0830"),
    _config("posture.opcua.certificate_self_signed", "low", "posture", "OPC UA certificate is self-signed", "T0830"),
    _config("posture.opcua.certificate_weak_key", "medium", "posture", "OPC UA certificate with a short key",
            "T0830"),
    _config("posture.opcua.certificate_weak_signature", "medium", "posture",
            "OPC UA certificate signed with SHA-1/MD5", "T0830"),
]

_PROTOCOL = [
    _r("protocol.modbus_illegal_function", "medium", "protocol", "Illegal Modbus function code (0 or exception bit)",
       "T0855"),
    _r("protocol.modbus_malformed", "low", "protocol", "Malformed Modbus/TCP traffic"),
    _r("protocol.modbus_unsolicited_response", "medium", "protocol", "Modbus response without a request", "T0856"),
    _r("protocol.modbus_response_mismatch", "low", "protocol", "Modbus response does not match its request",
       "T0856"),
    _r("protocol.modbus_unanswered", "info", "protocol", "Modbus requests left unanswered"),
    _r("protocol.mqtt_malformed", "low", "protocol", "Malformed MQTT traffic"),
    _r("protocol.mqtt_violation", "low", "protocol", "MQTT protocol violation"),
    _r("protocol.opcua_malformed", "low", "protocol", "Malformed OPC UA traffic"),
    _r("protocol.opcua_channel_mismatch", "high", "protocol", "OPC UA message for another secure channel", "T0830"),
    _r("protocol.unexpected_protocol", "medium", "protocol", "Not the expected protocol on an OT port", "T0885"),
    _r("protocol.ot_on_unusual_port", "low", "protocol", "OT protocol on a port not configured for it"),
    _r("protocol.inconsistent_overlap", "high", "protocol",
       "Overlapping TCP segments or IP fragments with different data (evasion)"),
    _r("protocol.ip_fragment_malformed", "medium", "protocol", "IP fragments that cannot form a valid datagram"),
]

_RECON = [
    _r("recon.host_scan", "high", "reconnaissance", "Host scan: one source probing many addresses", "T0846"),
    _r("recon.port_scan", "high", "reconnaissance", "Port scan: one source probing many ports of a host", "T0846"),
    _r("recon.modbus_function_sweep", "high", "reconnaissance", "Modbus function code sweep", "T0888"),
    _r("recon.modbus_unit_sweep", "high", "reconnaissance", "Modbus unit id sweep", "T0846"),
    _r("recon.modbus_register_sweep", "medium", "reconnaissance", "Modbus register sweep", "T0861"),
    _r("recon.key_overflow", "medium", "reconnaissance",
       "A link exceeded its distinct-message cap (a sweep or flood of new keys)", "T0861"),
    _r("recon.opcua_node_sweep", "medium", "reconnaissance", "OPC UA node id sweep", "T0861"),
]

_DOS = [
    _r("dos.anomaly_flood", "medium", "dos", "Flood of protocol anomalies on one connection", "T0814"),
    _r("dos.modbus_request_flood", "medium", "dos", "More outstanding Modbus requests than a server can hold",
       "T0814"),
    _r("dos.mqtt_resource_exhaustion", "medium", "dos", "MQTT client exhausting broker resources", "T0814"),
    _r("dos.opcua_resource_exhaustion", "high", "dos", "OPC UA messages beyond negotiated or sane limits", "T0814"),
    _r("dos.mqtt_connection_flood", "high", "dos", "Flood of MQTT connections from one source", "T0814"),
    _r("dos.mqtt_topic_flood", "medium", "dos", "Flood of new MQTT topics from one client", "T0814"),
    _r("dos.flow_flood", "high", "dos", "Flood of new connections to one service (SYN or connection flood)",
       "T0814"),
    _r("dos.connection_flood", "high", "dos", "Flood of Modbus or OPC UA connections from one client", "T0814"),
    _r("dos.message_flood", "high", "dos", "Flood of messages or bytes on one OT connection", "T0814"),
    _r("dos.opcua_session_flood", "high", "dos", "Flood of OPC UA sessions from one client", "T0814"),
]

_COMMAND = [
    _r("command.modbus_rogue_writer", "high", "command",
       "Modbus writes from a second master to a unit another master commands", "T0855"),
    _r("command.modbus_write_burst", "high", "command", "Burst of Modbus writes from a master that wrote rarely",
       "T0855"),
]

_AUTH = [
    _r("auth.mqtt_brute_force", "high", "credentials", "MQTT login brute force (run of refused CONNECTs)", "T0812"),
]

_IDENTITY = [
    _r("identity.firmware_changed", "high", "identity", "Device firmware or software version changed", "T0857"),
    _r("identity.device_changed", "high", "identity", "Device identity changed (vendor, product, model)",
       "T0849"),
    _r("identity.certificate_changed", "medium", "identity", "OPC UA application certificate changed", "T0830"),
    _r("identity.attribute_changed", "low", "identity", "Device identity attribute changed"),
    _r("identity.address_moved", "medium", "identity", "IP address moved to another device", "T0830"),
]

SCAN_WINDOW = 300.0
"""Seconds of packet time a source's probes are counted together.  nmap's default timing probes 1,000 ports
in seconds, slow scans spread over minutes; five minutes catches both without remembering a source forever."""
FLOOD_WINDOW = 10.0
"""Connection floods are counted over ten seconds of packet time: 200 connections in it is 20 a second, ten
times what an HMI that opens a connection per poll makes; a flood tool makes hundreds a second."""
LOGIN_WINDOW = 60.0
"""A login brute force or connection flood is dozens of attempts a minute; a misconfigured client retrying
every few seconds with a wrong password makes 5 in well under a minute too, and should be seen."""

THRESHOLDS: dict[str, dict[str, float]] = {
    "recon.host_scan": {"hosts": 10, "window": SCAN_WINDOW},
    "recon.port_scan": {"ports": 10, "window": SCAN_WINDOW},
    "recon.modbus_function_sweep": {"codes": 12, "window": SCAN_WINDOW},
    "recon.modbus_unit_sweep": {"units": 32, "failed": 8, "window": SCAN_WINDOW},
    "recon.modbus_register_sweep": {"ranges": 64, "walk": 0.9, "failed": 8, "window": SCAN_WINDOW},
    "recon.opcua_node_sweep": {"nodes": 256},
    "dos.mqtt_topic_flood": {"topics": 256, "rate": 100},
    "dos.flow_flood": {"flows": 1024},
    "auth.mqtt_brute_force": {"refused": 5, "window": LOGIN_WINDOW},
    "dos.mqtt_connection_flood": {"connects": 200, "window": LOGIN_WINDOW},
    "dos.connection_flood": {"connections": 200, "window": FLOOD_WINDOW},
    "dos.message_flood": {"messages": 5000, "rate": 1000, "megabytes": 4, "mbps": 1},
    "dos.opcua_session_flood": {"sessions": 50, "window": LOGIN_WINDOW},
    "command.modbus_write_burst": {"writes": 16, "window": 10, "settled": 60},
}
"""Default thresholds of the built-in detectors (scan.py, logins.py), per rule: what a rule's ``thresholds:``
in the detection settings may set.  docs/alerts.md says why each value."""


FOLDED: dict[str, str] = {
    "baseline.mqtt_brute_force": "auth.mqtt_brute_force",
    "baseline.function_code_sweep": "recon.modbus_function_sweep",
    "baseline.unit_id_sweep": "recon.modbus_unit_sweep",
    "baseline.register_sweep": "recon.modbus_register_sweep",
    "baseline.host_sweep": "recon.host_scan",
}
"""Baseline rules that name the same attack as a built-in detector's rule, folded into that rule's alert by the
AlertBook (one attack, one alert): the baseline counts what is new compared with what was learned, with lower
thresholds, the detectors count absolute numbers; when both run (``analyze --baseline``, the TUI, the sensor)
both would otherwise raise on one brute force or sweep.  ``baseline check`` (the detector alone) keeps its own
ids.  ``baseline.connection_flood`` is not folded: one client's many flows to one port of any protocol is not
``dos.flow_flood`` (many sources) nor ``dos.mqtt_connection_flood`` (MQTT CONNECTs only)."""


def folded_key(rule_id: str, src: str, dst: str, port: int) -> tuple:
    """The finding key a folded rule's finding takes: the one *rule_id*'s own detector uses (scan.py, logins.py)."""
    if rule_id == "auth.mqtt_brute_force":
        return (src, dst, port)
    if rule_id == "recon.host_scan":
        return (src,)
    return (src, dst)


def _with_thresholds(rules: list[Rule]) -> list[Rule]:
    return [replace(r, thresholds=tuple(THRESHOLDS[r.id])) if r.id in THRESHOLDS else r for r in rules]


RULES: dict[str, Rule] = {r.id: r for r in _with_thresholds([*_BASELINE, *_POLICY, *_POSTURE, *_PROTOCOL, *_RECON,
                                                              *_DOS, *_AUTH, *_IDENTITY, *_COMMAND])}

FINDING_ONLY = frozenset(r.id for r in RULES.values() if not r.default_enabled)
"""Rules raised as alerts only when the detection settings turn them on (``Rule.default_enabled``)."""

RULE_PREFIXES = ("baseline.", "policy.", "posture.", "protocol.", "recon.", "dos.", "auth.", "identity.",
                 "command.")

# ---------------------------------------------------------------------------
# Anomaly ids (engine: docs/observations.md; protocols: parsers/<proto>/spec.py, ext/opcua.py) -> rule

ANOMALY_RULES: dict[str, str] = {
    "dispatch.rejected": "protocol.unexpected_protocol",
    "dispatch.detected_by_content": "protocol.ot_on_unusual_port",
    "tcp.overlap_inconsistent": "protocol.inconsistent_overlap",
    "ip.fragment_overlap": "protocol.inconsistent_overlap",
    "ip.fragment_too_long": "protocol.ip_fragment_malformed",
    "flow.anomalies_suppressed": "dos.anomaly_flood",
    "modbus.invalid_function_code": "protocol.modbus_illegal_function",
    "modbus.invalid_protocol_id": "protocol.modbus_malformed",
    "modbus.invalid_length": "protocol.modbus_malformed",
    "modbus.resync": "protocol.modbus_malformed",
    "modbus.unsolicited_response": "protocol.modbus_unsolicited_response",
    "modbus.response_mismatch": "protocol.modbus_response_mismatch",
    "modbus.unanswered_request": "protocol.modbus_unanswered",
    "modbus.pending_overflow": "dos.modbus_request_flood",
    "modbus.key_overflow": "recon.key_overflow",
    "mqtt.key_overflow": "recon.key_overflow",
    "opcua.key_overflow": "recon.key_overflow",
    "mqtt.double_connect": "protocol.mqtt_violation",
    "mqtt.wrong_direction": "protocol.mqtt_violation",
    "mqtt.unknown_protocol_level": "protocol.mqtt_malformed",
    "mqtt.malformed": "protocol.mqtt_malformed",
    "mqtt.invalid_header": "protocol.mqtt_malformed",
    "mqtt.unknown_topic_alias": "protocol.mqtt_violation",
    "mqtt.invalid_topic_alias": "protocol.mqtt_violation",
    "mqtt.topic_alias_limit": "dos.mqtt_resource_exhaustion",
    "opcua.bad_header": "protocol.opcua_malformed",
    "opcua.short_chunk": "protocol.opcua_malformed",
    "opcua.secure_channel_mismatch": "protocol.opcua_channel_mismatch",
    "opcua.chunk_too_large": "dos.opcua_resource_exhaustion",
    "opcua.negotiated_limit_exceeded": "dos.opcua_resource_exhaustion",
    "opcua.message_too_large": "dos.opcua_resource_exhaustion",
    "opcua.too_many_chunks": "dos.opcua_resource_exhaustion",
    "opcua.too_many_partial_messages": "dos.opcua_resource_exhaustion",
}

IGNORED_ANOMALIES: dict[str, str] = {
    "memcap.evicted": "the sensor's own memory budget at work (counted, once per interval); the flood that filled it "
                      "arrives as scan summaries",
    "capture.corrupt_record": "a property of the capture file, not of the network (reported by analyze)",
    "capture.truncated_record": "an interrupted capture, not network behaviour",
    "capture.unknown_interface": "a malformed pcapng file, not network behaviour",
    "modbus.truncated": "the stream ended inside an ADU: capture boundary (when the sender closed the connection "
                        "itself: protocol.modbus_malformed, see CLOSED_TRUNCATIONS)",
    "modbus.not_modbus": "raised by the sans-IO ModbusConnection only (the engine detaches the kernel instead)",
    "mqtt.missing_connect": "normal once when a capture starts mid-session",
    "mqtt.lost_packet": "a hole in the capture, not in the traffic",
    "mqtt.desynchronised": "a hole in the capture, not in the traffic",
    "mqtt.resynchronised": "decoding resumed after a capture hole",
    "mqtt.truncated_at_eof": "the stream ended inside a packet: capture boundary (when the sender closed the "
                             "connection itself: protocol.mqtt_malformed, see CLOSED_TRUNCATIONS)",
    "mqtt.protocol_violation": "raised by the sans-IO MQTTConnection only (the engine detaches the kernel)",
    "opcua.gap_in_message": "a hole in the capture, not in the traffic",
    "opcua.truncated_chunk": "the stream ended inside a chunk: capture boundary (when the sender closed the "
                             "connection itself: protocol.opcua_malformed, see CLOSED_TRUNCATIONS)",
    "opcua.incomplete_message": "the stream ended mid-message: capture boundary",
    "opcua.not_opcua": "raised by the sans-IO OPC UA connection only (the engine detaches the kernel)",
}

CLOSED_TRUNCATIONS: dict[str, str] = {
    "modbus.truncated": "protocol.modbus_malformed",
    "mqtt.truncated_at_eof": "protocol.mqtt_malformed",
    "opcua.truncated_chunk": "protocol.opcua_malformed",
}
"""Ignored anomalies that are malformed traffic after all when the side that sent the partial message closed the
connection itself (FIN or reset): its length field lied (sensor/alerts/anomalies.py holds them until the flow ends)."""

# ---------------------------------------------------------------------------
# Inventory -> rules

POSTURE_PREFIX = "posture."
IDENTITY_FIRMWARE_ATTRIBUTES = frozenset({"MajorMinorRevision", "SoftwareVersion", "BuildNumber", "broker_version"})
"""Identity attributes that are a firmware/software version (Modbus device id object 2, OPC UA BuildInfo,
mosquitto $SYS/broker/version)."""
IDENTITY_DEVICE_ATTRIBUTES = frozenset({"VendorName", "ProductCode", "ProductName", "ModelName", "ServerIdData",
                                        "ApplicationUri", "ProductUri", "ManufacturerName"})
"""Attributes that name the device itself: a change means another device answers at that address."""
IDENTITY_CERTIFICATE_ATTRIBUTES = frozenset({"CertificateThumbprint"})


def identity_rule(attribute: str) -> str:
    """The rule for a changed identity attribute (OPC UA client attributes carry a group prefix)."""
    base = attribute.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
    if base in IDENTITY_FIRMWARE_ATTRIBUTES:
        return "identity.firmware_changed"
    if base in IDENTITY_CERTIFICATE_ATTRIBUTES:
        return "identity.certificate_changed"
    if base in IDENTITY_DEVICE_ATTRIBUTES:
        return "identity.device_changed"
    return "identity.attribute_changed"


def rule(rule_id: str) -> Rule:
    """The catalogue entry; ``KeyError`` for an id that is not in the catalogue (a bug in the producer)."""
    return RULES[rule_id]


def finding(rule_id: str, key: tuple, message: str, evidence: Evidence, **fields) -> Finding:
    """A Finding for *rule_id* with the catalogue's severity, category and technique filled in."""
    r = RULES[rule_id]
    return Finding(rule_id, tuple(key), fields.pop("severity", r.severity), r.category, message, evidence,
                   technique=fields.pop("technique", r.technique), **fields)


def validate() -> list[str]:
    """Problems in the catalogue itself (the tests call it): unknown severities, categories or techniques."""
    bad = []
    for r in RULES.values():
        if r.severity not in SEVERITIES:
            bad.append(f"{r.id}: severity {r.severity!r}")
        if r.category not in CATEGORIES:
            bad.append(f"{r.id}: category {r.category!r}")
        if r.technique and r.technique not in TECHNIQUES:
            bad.append(f"{r.id}: technique {r.technique!r} not in TECHNIQUES")
        if not r.id.startswith(RULE_PREFIXES):
            bad.append(f"{r.id}: prefix")
    for aid, rid in ANOMALY_RULES.items():
        if rid not in RULES:
            bad.append(f"anomaly {aid}: rule {rid!r} not in RULES")
    return bad


__all__ = ["FINDING_ONLY", "FOLDED", "folded_key", "Rule", "RULES", "TECHNIQUES", "ATTACK_URL", "ATTACK_FRAMEWORK", "ANOMALY_RULES", "IGNORED_ANOMALIES",
           "RULE_PREFIXES", "identity_rule", "rule", "finding", "validate", "replace"]
