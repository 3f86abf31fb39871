"""Finding-only posture rules: which switch turns them into alerts, and what wins (sensor/alerts/settings.py)."""
from __future__ import annotations

from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.catalogue import finding
from otwatch.sensor.alerts.model import Evidence
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.policy.loader import parse_policy

NOAUTH, ANON, CROSS = "posture.modbus.no_authentication", "posture.mqtt.anonymous_access", "posture.modbus.cross_zone"
Z = "version: 1\nzones:\n  plant:\n    networks: [10.0.0.0/8]\n"


def _raised(settings: AlertSettings) -> tuple[set, dict]:
    book = AlertBook(settings)
    for i, rid in enumerate((NOAUTH, ANON, CROSS), 1):
        book.raise_finding(finding(rid, ("a", rid), "m", Evidence("x.pcap", i, float(i))))
    return {a.rule for a in book.alerts()}, book.counts


def test_default_keeps_configuration_findings_out_of_the_alerts():
    rules, counts = _raised(AlertSettings())
    assert rules == {CROSS}
    assert counts["finding_only"] == 2 and counts["disabled"] == 0


def test_posture_alerts_turns_them_on():
    assert _raised(AlertSettings(posture_alerts=True))[0] == {NOAUTH, ANON, CROSS}


def test_policy_file_switches():
    def from_file(detections: str, **kw) -> set:
        return _raised(AlertSettings.from_policy(parse_policy(Z + "detections:\n" + detections), **kw))[0]

    assert from_file("  posture.*: {enabled: true}\n") == {NOAUTH, ANON, CROSS}
    assert from_file(f"  {ANON}: {{enabled: true}}\n") == {ANON, CROSS}
    assert from_file(f"  {ANON}: {{severity: critical}}\n") == {CROSS}        # no `enabled`: the default
    assert from_file(f"  posture.*: {{enabled: true}}\n  {NOAUTH}: {{enabled: false}}\n") == {ANON, CROSS}
    assert from_file(f"  {NOAUTH}: {{enabled: false}}\n", posture_alerts=True) == {ANON, CROSS}
    assert from_file("  posture.*: {enabled: false}\n", posture_alerts=True) == set()
    off = parse_policy(Z + f"detections:\n  {NOAUTH}: {{enabled: false}}\n")
    rules, counts = _raised(AlertSettings.from_policy(off))
    assert counts["disabled"] == 1 and counts["finding_only"] == 1         # an operator's "off" is counted as such


def test_a_longer_prefix_wins_and_policy_rules_see_prefixes():
    p = parse_policy(Z + "detections:\n  posture.*: {enabled: true}\n  posture.mqtt.*: {enabled: false}\n"
                         "  policy.*: {severity: low}\n")
    assert _raised(AlertSettings.from_policy(p))[0] == {NOAUTH, CROSS}
    assert p.detection("policy.flow_denied").severity == "low"
    assert p.detection("policy.flow_denied").enabled is None
