"""Every validation error of the policy loader, with its file:line:column.

Each case is a policy text and the (line, column, code) of every problem it must
raise (and only those).  A last test checks that every code the loader knows is
exercised here, so a new error cannot ship untested.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.policyhelp import problems, where

from otwatch.sensor.policy import PolicyError, load_policy, parse_policy
from otwatch.sensor.policy.errors import PROBLEM_CODES
from otwatch.sensor.policy.yamlsrc import MAX_BYTES

Z = """\
version: 1
zones:
  control:
    networks: [10.0.1.0/24]
"""

CASES = {
    "yaml-syntax": ("version: 1\nzones: [\n", [(3, 1, "yaml-syntax")]),
    "empty-file": ("# nothing\n", [(1, 1, "empty-file")]),
    "duplicate-key": (Z + "  control:\n    networks: [10.0.2.0/24]\n", [(5, 3, "duplicate-key")]),
    "duplicate-key-nested": (Z + "    vlans: [3]\n    vlans: [4]\n", [(6, 5, "duplicate-key")]),
    "not-mapping": ("version: 1\nzones: [a, b]\n", [(2, 8, "not-mapping")]),
    "merge-key": ("version: 1\nbase: &b {networks: [10.0.0.0/8]}\nzones:\n  a:\n    <<: *b\n",
                  [(2, 1, "unknown-key"), (5, 5, "merge-key")]),
    "bad-key": (Z + "conduits:\n  ? [a]\n  : {}\n", [(6, 5, "bad-key")]),
    "unknown-key": (Z + "    netwroks: [10.0.9.0/24]\n", [(5, 5, "unknown-key")]),
    "unknown-key-top": (Z + "zone: {}\n", [(5, 1, "unknown-key")]),
    "missing-key": (Z + "conduits:\n  c:\n    to: control\n    allow: [{protocol: modbus}]\n",
                    [(6, 3, "missing-key")]),
    "missing-key-protocol": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n      - ports: [1]\n",
                             [(10, 9, "missing-key")]),
    "not-list": (Z + "    vlans: {a: 1}\n", [(5, 12, "not-list")]),
    "not-text": ("version: 1\nname: [x]\n" + Z[11:], [(2, 7, "not-text")]),
    "not-integer": (Z + "    vlans: [ten]\n", [(5, 13, "not-integer")]),
    "not-integer-bool": (Z + "    security_level: yes\n", [(5, 21, "not-integer")]),
    "not-boolean": (Z + "detections:\n  policy.flow_denied: {enabled: maybe}\n", [(6, 33, "not-boolean")]),
    "out-of-range": (Z + "    vlans: [4095]\n", [(5, 13, "out-of-range")]),
    "bad-choice": (Z + "    intra_zone: permit\n", [(5, 17, "bad-choice")]),
    "bad-range": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                      "      - protocol: tcp\n        ports: [1-2-3]\n", [(11, 17, "bad-range")]),
    "backwards-range": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                            "      - protocol: tcp\n        ports: [600-500]\n", [(11, 17, "backwards-range")]),
    "range-out-of-range": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                               "      - protocol: modbus\n        modbus: {units: [250-300]}\n", [(11, 26, "out-of-range")]),
    "missing-version": (Z[11:], [(1, 1, "missing-version")]),
    "bad-version": ("version: 2\n" + Z[11:], [(1, 10, "bad-version")]),
    "missing-zones": ("version: 1\n", [(1, 1, "missing-zones")]),
    "bad-name": ("version: 1\nzones:\n  cell 1:\n    vlans: [5]\n", [(3, 3, "bad-name")]),
    "reserved-zone": ("version: 1\nzones:\n  unzoned:\n    vlans: [5]\n", [(3, 3, "reserved-zone")]),
    "no-members": ("version: 1\nzones:\n  empty:\n    level: 2\n", [(3, 3, "no-members")]),
    "bad-network": (Z.replace("10.0.1.0/24", "10.0.1.0/33"), [(4, 16, "bad-network")]),
    "bad-network-text": (Z.replace("10.0.1.0/24", "plc-net"), [(4, 16, "bad-network")]),
    "host-bits": (Z.replace("10.0.1.0/24", "10.0.1.7/24"), [(4, 16, "host-bits")]),
    "bad-mac": (Z + "    macs: [00:80:f4:0a:00]\n", [(5, 12, "bad-mac")]),
    "bad-mac-asset": (Z + "    assets: ['mac:zz']\n", [(5, 14, "bad-mac")]),
    "empty-asset": (Z + "    assets: ['']\n", [(5, 14, "empty-asset")]),
    "bad-level": (Z + "    level: 6\n", [(5, 12, "bad-level")]),
    "zone-overlap": (Z + "  other:\n    networks: [10.0.1.0/24]\n", [(6, 16, "zone-overlap")]),
    "zone-overlap-mac": (Z + "    macs: ['02:00:00:00:00:01']\n  other:\n    assets: ['mac:02-00-00-00-00-01']\n",
                         [(7, 14, "zone-overlap")]),
    "zone-overlap-vlan": (Z + "    vlans: [7]\n  other:\n    vlans: [7]\n", [(7, 13, "zone-overlap")]),
    "listed-twice": (Z + "    vlans: [7, 7]\n", [(5, 16, "listed-twice")]),
    "unknown-zone": (Z + "conduits:\n  c:\n    from: contrl\n    to: [control, nowhere]\n    allow: [{protocol: any}]\n",
                     [(7, 11, "unknown-zone"), (8, 19, "unknown-zone")]),
    "empty-allow": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow: []\n", [(9, 12, "empty-allow")]),
    "ports-not-applicable": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                                 "      - {protocol: icmp, ports: [1]}\n", [(10, 26, "ports-not-applicable")]),
    "wrong-section": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                          "      - protocol: mqtt\n        modbus: {units: [1]}\n", [(11, 9, "wrong-section")]),
    "bad-topic-filter": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                             "      - protocol: mqtt\n        mqtt:\n          publish: [a/#/b, a/b+]\n",
                         [(12, 21, "bad-topic-filter"), (12, 28, "bad-topic-filter")]),
    "unknown-service": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                            "      - protocol: opcua\n        opcua: {services: [read]}\n", [(11, 28, "unknown-service")]),
    "bad-choice-mode": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                            "      - protocol: opcua\n        opcua: {min_security_mode: Encrypt}\n",
                        [(11, 36, "bad-choice")]),
    "bad-choice-operation": (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
                                 "      - protocol: modbus\n        modbus: {operations: [reed]}\n",
                             [(11, 31, "bad-choice")]),
    "bad-rule-id": (Z + "detections:\n  Flow-Denied: {}\n", [(6, 3, "bad-rule-id")]),
    "unknown-rule": (Z + "detections:\n  policy.flow_deny: {}\n", [(6, 3, "unknown-rule")]),
    "unknown-rule-baseline": (Z + "detections:\n  baseline.new_pairs: {}\n", [(6, 3, "unknown-rule")]),
    "unknown-rule-prefix": (Z + "detections:\n  posture.modbs.*: {enabled: true}\n", [(6, 3, "unknown-rule")]),
    "prefix-takes-no-thresholds": (Z + "detections:\n  posture.*:\n    thresholds: {count: 3}\n",
                                   [(7, 18, "unknown-key")]),
    "unknown-threshold": (Z + "detections:\n  policy.flow_denied:\n    thresholds: {count: 3}\n",
                          [(7, 18, "unknown-key")]),
    "bad-allow-entry": (Z + "detections:\n  policy.flow_denied:\n    allow: [contrl]\n", [(7, 13, "bad-allow-entry")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error(name):
    text, expected = CASES[name]
    assert sorted(where(text)) == sorted(expected)


def test_every_problem_code_is_tested_and_listed():
    tested = {code for _, exp in CASES.values() for *_, code in exp}
    tested |= {"unreadable", "not-utf8", "too-large", "too-many-nodes", "bad-threshold"}   # below
    assert tested == set(PROBLEM_CODES)
    src = "".join((Path(__file__).resolve().parents[3] / "sensor" / "policy" / f).read_text()
                  for f in ("loader.py", "yamlsrc.py"))
    raised = set(re.findall(r'self\.err\([^,]+, "([a-z0-9-]+)"', src)) | \
        set(re.findall(r'(?:path|str\(path\)), "([a-z0-9-]+)"\)', src))
    assert raised == set(PROBLEM_CODES)


def test_all_errors_at_once_with_file_line_column(tmp_path):
    p = tmp_path / "site.yaml"
    p.write_text("version: 1\nzones:\n  a:\n    networks: [10.0.0.0/33]\n    vlanz: [1]\n"
                 "conduits:\n  c:\n    from: b\n    to: a\n    allow: [{protocol: modbus, ports: [0]}]\n")
    with pytest.raises(PolicyError) as ei:
        load_policy(p)
    lines = str(ei.value).splitlines()
    assert lines == [
        f"{p}:4:16: '10.0.0.0/33' is not an IP address or CIDR network ('10.0.0.0/33' does not appear to be "
        "an IPv4 or IPv6 network) [bad-network]",
        f"{p}:5:5: unknown key 'vlanz' in zone 'a' (did you mean 'vlans'?); allowed: description, level, "
        "security_level, networks, vlans, macs, assets, intra_zone [unknown-key]",
        f"{p}:8:11: from: unknown zone 'b' [unknown-zone]",
        f"{p}:10:40: ports 0 is out of range 1..65535 [out-of-range]",
    ]


def test_duplicate_key_names_both_lines():
    (pr,) = problems(Z + "  control:\n    vlans: [1]\n")
    assert "duplicate key 'control' (first at line 3)" in pr.message


def test_unreadable_and_not_utf8(tmp_path):
    with pytest.raises(PolicyError) as ei:
        load_policy(tmp_path / "missing.yaml")
    assert ei.value.problems[0].code == "unreadable"
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(PolicyError) as ei:
        load_policy(p)
    (pr,) = ei.value.problems
    assert (pr.line, pr.column, pr.code) == (2, 10, "not-utf8")


def test_too_large():
    with pytest.raises(PolicyError) as ei:
        parse_policy("#" * (MAX_BYTES + 1))
    assert ei.value.problems[0].code == "too-large"


def test_alias_amplification_is_refused():
    # 20 kB of text that would make the validator visit 4 million nodes: one rule whose port
    # list has 2000 items, used 2000 times through an alias; the walk stops at MAX_NODES
    ports = ", ".join(str(i) for i in range(1, 2001))
    text = (Z + "conduits:\n  c:\n    from: control\n    to: control\n    allow:\n"
            f"      - &r {{protocol: tcp, ports: [{ports}]}}\n" + "      - *r\n" * 2000)
    with pytest.raises(PolicyError) as ei:
        parse_policy(text)
    assert [p.code for p in ei.value.problems] == ["too-many-nodes"]


def test_bad_threshold_with_a_catalogue_that_names_thresholds():
    text = Z + "detections:\n  baseline.rate:\n    thresholds: {factor: -1, window: [1]}\n"
    with pytest.raises(PolicyError) as ei:
        parse_policy(text, "p.yaml", rules={"baseline.rate": ("factor", "window")})
    assert [(p.line, p.column, p.code) for p in ei.value.problems] == [(7, 26, "bad-threshold"),
                                                                       (7, 38, "bad-threshold")]
    ok = parse_policy(Z + "detections:\n  baseline.rate:\n    thresholds: {factor: 2.5}\n", rules={"baseline.rate": ("factor",)})
    assert ok.detections["baseline.rate"].thresholds == {"factor": 2.5}


def test_yaml_syntax_error_position():
    (pr,) = problems("version: 1\nzones:\n  a: {networks: [10.0.0.0/8]\n")
    assert pr.code == "yaml-syntax" and pr.line == 4


def test_other_producers_rule_ids_are_accepted():
    p = parse_policy(Z + "detections:\n  baseline.new_pair: {severity: low}\n  recon.port_scan: {enabled: false}\n")
    assert p.detections["baseline.new_pair"].severity == "low"
    assert p.detections["recon.port_scan"].enabled is False         # the alerts catalogue's id
    # the alerts catalogue is installed and owns every id: one it does not list is unknown
    with pytest.raises(PolicyError, match="unknown rule 'vendor.custom_rule'"):
        parse_policy(Z + "detections:\n  vendor.custom_rule: {enabled: false}\n")
