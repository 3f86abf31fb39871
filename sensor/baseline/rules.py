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

from otwatch.sensor.alerts.model import Rule

_R = (
    # the set of assets and pairs
    Rule("baseline.new_asset", "medium", "baseline", "New asset", "T0846"),
    Rule("baseline.new_pair", "medium", "baseline", "New communication pair", "T0886"),
    Rule("baseline.new_port", "medium", "baseline", "New protocol or port on a known pair", "T0869"),
    # Modbus
    Rule("baseline.new_unit_id", "medium", "baseline", "New Modbus unit id on a pair", "T0846"),
    Rule("baseline.new_function_code", "medium", "baseline", "New Modbus function code on a pair", "T0855"),
    Rule("baseline.first_write", "high", "baseline", "First write on a pair that only read", "T0836"),
    Rule("baseline.program_operation", "critical", "baseline", "Program or firmware operation", "T0843"),
    Rule("baseline.read_outside_coverage", "low", "baseline", "Read outside the learned registers", "T0861"),
    Rule("baseline.write_outside_coverage", "high", "baseline", "Write outside the learned registers", "T0836"),
    Rule("baseline.device_identification_read", "low", "baseline",
         "Device identification read by a client that never asked", "T0888"),
    Rule("baseline.function_code_sweep", "high", "reconnaissance", "Modbus function-code sweep", "T0846"),
    Rule("baseline.unit_id_sweep", "high", "reconnaissance", "Modbus unit-id sweep", "T0846"),
    Rule("baseline.register_sweep", "high", "reconnaissance", "Modbus register sweep", "T0861"),
    Rule("baseline.host_sweep", "high", "reconnaissance", "Sweep of hosts by one client", "T0846"),
    Rule("baseline.exception_storm", "medium", "baseline", "Exception storm", "T0814"),
    # MQTT
    Rule("baseline.new_topic_published", "medium", "baseline", "New MQTT topic published", "T0855"),
    Rule("baseline.new_topic_subscribed", "low", "baseline", "New MQTT topic filter subscribed", "T0861"),
    Rule("baseline.wildcard_subscription", "high", "baseline",
         "'#' subscription by a client that never used one", "T0861"),
    Rule("baseline.mqtt_brute_force", "high", "baseline", "MQTT brute force (refused CONNECTs)", "T0859"),
    Rule("baseline.connection_flood", "high", "dos", "Connection flood", "T0814"),
    Rule("baseline.mqtt_session_change", "low", "baseline",
         "MQTT client changed protocol level, credentials, QoS or retain use", "T0859"),
    # OPC UA
    Rule("baseline.new_service", "high", "baseline", "New OPC UA service on a pair (e.g. Write, Call)", "T0855"),
    Rule("baseline.new_node_written", "high", "baseline", "OPC UA node written for the first time", "T0836"),
    Rule("baseline.new_method_called", "high", "baseline", "OPC UA method called for the first time", "T0855"),
    Rule("baseline.security_downgrade", "high", "baseline",
         "OPC UA security downgrade (weaker mode or policy than learned)", "T0830"),
    Rule("baseline.new_user_token", "medium", "baseline", "OPC UA user token type not learned", "T0859"),
    Rule("baseline.new_certificate", "medium", "identity", "New OPC UA application certificate", "T0830"),
    # timing
    Rule("baseline.poll_stopped", "medium", "baseline", "Polling stopped", "T0815"),
    Rule("baseline.period_changed", "low", "baseline", "Polling period changed", ""),
    Rule("baseline.rate_out_of_band", "low", "baseline", "Message rate outside its learned band", "T0814"),
    # identity
    Rule("baseline.identity_changed", "high", "identity",
         "Device identity changed (firmware, vendor, product)", "T0839"),
)

RULES: dict[str, Rule] = {r.id: r for r in _R}
"""Every rule the baseline can raise, by id."""

__all__ = ["Rule", "RULES"]
