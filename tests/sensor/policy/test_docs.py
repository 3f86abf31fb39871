"""docs/rules.md documents every key, every validation error, every rule and verdict code.

Like sqlite-utils' test_docs.py: a key, problem code or rule id added to the
code without a line in the docs fails here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from otwatch.sensor.policy import loader
from otwatch.sensor.policy.catalogue import RULES
from otwatch.sensor.policy.errors import PROBLEM_CODES
from otwatch.sensor.policy.model import MODBUS_OPERATIONS, MODBUS_TABLES, PROTOCOLS, SECURITY_MODES
from otwatch.sensor.policy.observed import SeenPair

DOC = (Path(__file__).resolve().parents[3] / "docs" / "rules.md").read_text()
KEYS = sorted(set(loader.TOP_KEYS + loader.ZONE_KEYS + loader.CONDUIT_KEYS + loader.RULE_KEYS + loader.MODBUS_KEYS
                  + loader.MQTT_KEYS + loader.OPCUA_KEYS + loader.DETECTION_KEYS))


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_documented(key):
    assert f"`{key}`" in DOC


@pytest.mark.parametrize("code", PROBLEM_CODES)
def test_every_problem_code_is_documented(code):
    assert f"| `{code}` |" in DOC


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_is_documented(rule):
    assert f"| `{rule}` |" in DOC


@pytest.mark.parametrize("word", list(PROTOCOLS) + list(MODBUS_OPERATIONS) + list(MODBUS_TABLES) + list(SECURITY_MODES)
                         + ["no_conduit", "not_in_conduit", "protocol", "operation", "function_code", "unit",
                            "register", "topic", "service"])
def test_every_value_is_documented(word):
    assert f"`{word}`" in DOC


@pytest.mark.parametrize("field", [f for f in SeenPair.__dataclass_fields__])
def test_suggest_input_is_documented(field):
    assert f"`{field}`" in DOC
