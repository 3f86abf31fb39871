"""The catalogue is complete: every anomaly id, every rule used in code, every rule documented."""
from __future__ import annotations

import ast
import pathlib
import re

from otwatch.ext import opcua as opcua_kernel
from otwatch.parsers.modbus import spec as modbus_spec
from otwatch.parsers.mqtt import spec as mqtt_spec
from otwatch.parsers.opcua import connection as opcua_connection
from otwatch.sensor.alerts import catalogue as C
from otwatch.sensor.inventory import posture
from otwatch.sensor.inventory.model import EVENT_TYPES

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "alerts.md").read_text()
RULE_LITERAL = re.compile(r"^(?:%s)[a-z0-9_]+(?:\.[a-z0-9_*]+)*$" % "|".join(re.escape(p) for p in C.RULE_PREFIXES))
NOT_RULES = {"policy.yaml", "baseline.yaml", "baseline.md", "policy.md"} | set(EVENT_TYPES)
"""Strings with a rule-like prefix that are not rules (file names; inventory event types like identity.changed)."""


def test_catalogue_is_consistent():
    assert C.validate() == []
    for r in C.RULES.values():
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_.]+", r.id), r.id


def _engine_anomalies() -> set[str]:
    text = (ROOT / "docs" / "observations.md").read_text()
    part = text.split("## Anomalies raised by the engine", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", part, re.M))


def test_every_anomaly_id_is_mapped_or_ignored_with_a_reason():
    ids = set(modbus_spec.ANOMALIES) | set(mqtt_spec.ANOMALIES) | set(opcua_kernel.ANOMALY_IDS) \
        | {opcua_connection.NOT_OPCUA} | _engine_anomalies()
    assert len(_engine_anomalies()) >= 5
    mapped, ignored = set(C.ANOMALY_RULES), set(C.IGNORED_ANOMALIES)
    assert not mapped & ignored
    assert ids - mapped - ignored == set(), "anomaly ids with no alert decision"
    assert (mapped | ignored) - ids == set(), "catalogue names anomaly ids nobody raises"
    assert all(why.strip() for why in C.IGNORED_ANOMALIES.values())


def test_posture_rules_follow_the_inventory_findings():
    for fid, (sev, _title) in posture.FINDINGS.items():
        r = C.RULES.get("posture." + fid)
        assert r is not None, fid
        assert r.severity == sev, fid
    assert {r for r in C.RULES if r.startswith("posture.")} == {"posture." + f for f in posture.FINDINGS}


_NOT_RULE_CALLS = {"get", "setdefault", "pop", "startswith", "endswith", "split", "join", "format", "replace",
                   "append", "add", "discard", "count", "index", "find"}


def _rule_literals(path: pathlib.Path):
    """String literals used as a rule: the first argument (or ``rule=``) of a call, or the value of an
    UPPER_CASE constant.  Counter keys (``counts["policy.x"]``, ``.get("policy.x")``) are not rules."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in _NOT_RULE_CALLS:
                continue
            args = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == "rule"]
            for a in args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    yield a.value
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str):
            if any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                yield node.value.value


def test_every_rule_used_in_the_code_is_in_the_catalogue():
    used = {}
    for path in (ROOT / "sensor").rglob("*.py"):
        for s in _rule_literals(path):
            if RULE_LITERAL.match(s) and s not in NOT_RULES and "*" not in s:
                used.setdefault(s, str(path.relative_to(ROOT)))
    unknown = {s: where for s, where in used.items() if s not in C.RULES and s not in C.ANOMALY_RULES}
    assert unknown == {}
    # the scan finds the built-in producers' rules (so it can fail)
    assert {"recon.port_scan", "identity.address_moved", "baseline.new_asset", "policy.flow_denied"} <= set(used)


def _section(rule_id: str) -> str:
    m = re.search(r"^### `%s`\n(.*?)(?=^### |\Z)" % re.escape(rule_id), DOC, re.M | re.S)
    return m.group(1) if m else ""


def test_every_rule_has_a_documented_section():
    for r in C.RULES.values():
        if r.id.startswith("baseline."):
            assert re.search(r"^\| `%s` \| %s \|" % (re.escape(r.id), r.severity), DOC, re.M), r.id
            continue
        sec = _section(r.id)
        assert sec, f"docs/alerts.md has no section for {r.id}"
        for part in ("**What:**", "**Why:**", "**Evidence:**", "**ATT&CK:**", "**Tune:**"):
            assert part in sec, (r.id, part)
        assert f"Default severity **{r.severity}**" in sec, r.id
        for k in r.thresholds:
            assert f"`{k}` = " in sec, (r.id, k)
        if r.technique:
            assert f"{r.technique} {C.TECHNIQUES[r.technique]}" in sec, r.id
        else:
            assert "none fits" in sec, r.id
    for tid, name in C.TECHNIQUES.items():
        assert f"[{tid}](https://attack.mitre.org/techniques/{tid}/) | {name} |" in DOC, tid


def test_the_docs_document_no_rule_that_does_not_exist():
    for rid in re.findall(r"^### `([^`]+)`", DOC, re.M):
        assert rid in C.RULES, rid


def test_identity_rule_classifies_attributes():
    assert C.identity_rule("MajorMinorRevision") == "identity.firmware_changed"
    assert C.identity_rule("CertificateThumbprint") == "identity.certificate_changed"
    assert C.identity_rule("VendorName") == "identity.device_changed"
    assert C.identity_rule("RunIndicator") == "identity.attribute_changed"


def test_configuration_posture_findings_are_findings_only_by_default():
    """The catalogue is the one place that says which rules are findings only (inventory, no alert)."""
    assert C.FINDING_ONLY == {
        "posture.modbus.no_authentication", "posture.mqtt.anonymous_access", "posture.opcua.security_policy_none",
        "posture.opcua.deprecated_policy", "posture.opcua.anonymous_token",
        "posture.opcua.cleartext_username_offered", "posture.opcua.certificate_expired",
        "posture.opcua.certificate_self_signed", "posture.opcua.certificate_weak_key",
        "posture.opcua.certificate_weak_signature"}
    for rid in ("posture.modbus.cross_zone", "posture.mqtt.cleartext_credentials",
                "posture.opcua.cleartext_username", "posture.mqtt.wildcard_subscription"):
        assert C.RULES[rid].default_enabled       # what a client did stays an alert
    assert all(C.RULES[r].category == "posture" for r in C.FINDING_ONLY)
