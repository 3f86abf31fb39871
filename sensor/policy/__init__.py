"""Zones-and-conduits segmentation policy (IEC 62443 terms): language, loader, checker, suggester.

* ``load_policy(path)`` / ``parse_policy(text)`` → ``Policy`` or ``PolicyError`` (every problem,
  ``file:line:column: what``) — loader.py; the language is in docs/rules.md.
* ``PolicyChecker(policy, sink)`` — a pipeline consumer raising ``policy.*`` findings (checker.py).
* ``suggest_policy(pairs, ...)`` — a commented, deterministic draft policy from observed pairs (suggest.py).
"""
from __future__ import annotations

from .errors import PolicyError, Problem
from .loader import load_policy, parse_policy
from .model import UNZONED, Policy

__all__ = ["PolicyError", "Problem", "load_policy", "parse_policy", "Policy", "UNZONED", "PolicyChecker",
           "suggest_policy"]


def __getattr__(name):   # the checker pulls in the parsers' specs; the CLI's `rules check` does not need them
    if name == "PolicyChecker":
        from .checker import PolicyChecker

        return PolicyChecker
    if name == "suggest_policy":
        from .suggest import suggest_policy

        return suggest_policy
    raise AttributeError(name)
