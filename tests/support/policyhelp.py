"""Helpers for the policy tests: a minimal valid policy to vary, and a loader that returns problems."""
from __future__ import annotations

import textwrap

import pytest

from otwatch.sensor.policy import PolicyError, parse_policy

BASE = """\
version: 1
zones:
  control:
    networks: [10.0.1.0/24]
  ops:
    networks: [10.0.3.0/24]
conduits:
  c:
    from: ops
    to: control
    allow:
      - protocol: modbus
"""


def policy(text: str, path: str = "p.yaml"):
    return parse_policy(textwrap.dedent(text), path)


def problems(text: str, path: str = "p.yaml") -> list:
    with pytest.raises(PolicyError) as ei:
        parse_policy(textwrap.dedent(text), path)
    return ei.value.problems


def where(text: str) -> list[tuple[int, int, str]]:
    """(line, column, code) of every problem."""
    return [(p.line, p.column, p.code) for p in problems(text)]
