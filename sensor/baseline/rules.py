"""The baseline's rule ids: what each departure is called, how bad it is by default, and its ATT&CK id.

Contract: ``RULES`` maps a stable dotted rule id (``baseline.<what>``, never
renamed once shipped) to a ``Rule``.  The alert catalogue (sensor/alerts)
imports this table; the detector (``detect.py``) raises findings only with ids
listed here (a test checks it), and docs/baseline.md has one section per rule.

ATT&CK for ICS ids follow /work/shared/reference/alerts-anchors.md §2 and
attack.mitre.org/techniques/ics/: T0846 Remote System Discovery, T0888 Remote System Information
Discovery, T0861 Point & Tag Identification, T0855 Unauthorized Command
Message, T0836 Modify Parameter, T0843 Program Download, T0814 Denial of
Service, T0859 Valid Accounts, T0830 Adversary-in-the-Middle, T0839 Module
Firmware, T0886 Remote Services, T0869 Standard Application Layer Protocol,
T0815 Denial of View.  ICS ATT&CK has no credential brute-force technique;
an MQTT brute force is filed under T0859 (the valid accounts it is after).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: str      # default severity (sensor.alerts.model.SEVERITIES)
    category: str      # sensor.alerts.model.CATEGORIES
    technique: str     # ATT&CK for ICS id, "" when none fits
    title: str         # short name, as an alert list shows it


_R = (
    # the set of assets and pairs
    Rule("baseline.new_asset", "medium", "baseline", "T0846", "New asset"),
    Rule("baseline.new_pair", "medium", "baseline", "T0886", "New communication pair"),
    Rule("baseline.new_port", "medium", "baseline", "T0869", "New protocol or port on a known pair"),
    # Modbus
    Rule("baseline.new_unit_id", "medium", "baseline", "T0846", "New Modbus unit id on a pair"),
    Rule("baseline.new_function_code", "medium", "baseline", "T0855", "New Modbus function code on a pair"),
    Rule("baseline.first_write", "high", "baseline", "T0836", "First write on a pair that only read"),
    Rule("baseline.program_operation", "critical", "baseline", "T0843", "Program or firmware operation"),
    Rule("baseline.read_outside_coverage", "low", "baseline", "T0861", "Read outside the learned registers"),
    Rule("baseline.write_outside_coverage", "high", "baseline", "T0836", "Write outside the learned registers"),
    Rule("baseline.device_identification_read", "low", "baseline", "T0888",
         "Device identification read by a client that never asked"),
    Rule("baseline.function_code_sweep", "high", "reconnaissance", "T0846", "Modbus function-code sweep"),
    Rule("baseline.unit_id_sweep", "high", "reconnaissance", "T0846", "Modbus unit-id sweep"),
    Rule("baseline.register_sweep", "high", "reconnaissance", "T0861", "Modbus register sweep"),
    Rule("baseline.host_sweep", "high", "reconnaissance", "T0846", "Sweep of hosts by one client"),
    Rule("baseline.exception_storm", "medium", "baseline", "T0814", "Exception storm"),
    # MQTT
    Rule("baseline.new_topic_published", "medium", "baseline", "T0855", "New MQTT topic published"),
    Rule("baseline.new_topic_subscribed", "low", "baseline", "T0861", "New MQTT topic filter subscribed"),
    Rule("baseline.wildcard_subscription", "high", "baseline", "T0861",
         "'#' subscription by a client that never used one"),
    Rule("baseline.mqtt_brute_force", "high", "baseline", "T0859", "MQTT brute force (refused CONNECTs)"),
    Rule("baseline.connection_flood", "high", "dos", "T0814", "Connection flood"),
    Rule("baseline.mqtt_session_change", "low", "baseline", "T0859",
         "MQTT client changed protocol level, credentials, QoS or retain use"),
    # OPC UA
    Rule("baseline.new_service", "high", "baseline", "T0855", "New OPC UA service on a pair (e.g. Write, Call)"),
    Rule("baseline.new_node_written", "high", "baseline", "T0836", "OPC UA node written for the first time"),
    Rule("baseline.new_method_called", "high", "baseline", "T0855", "OPC UA method called for the first time"),
    Rule("baseline.security_downgrade", "high", "baseline", "T0830",
         "OPC UA security downgrade (weaker mode or policy than learned)"),
    Rule("baseline.new_user_token", "medium", "baseline", "T0859", "OPC UA user token type not learned"),
    Rule("baseline.new_certificate", "medium", "identity", "T0830", "New OPC UA application certificate"),
    # timing
    Rule("baseline.poll_stopped", "medium", "baseline", "T0815", "Polling stopped"),
    Rule("baseline.period_changed", "low", "baseline", "", "Polling period changed"),
    Rule("baseline.rate_out_of_band", "low", "baseline", "T0814", "Message rate outside its learned band"),
    # identity
    Rule("baseline.identity_changed", "high", "identity", "T0839", "Device identity changed (firmware, vendor, product)"),
)

RULES: dict[str, Rule] = {r.id: r for r in _R}
"""Every rule the baseline can raise, by id."""

__all__ = ["Rule", "RULES"]
