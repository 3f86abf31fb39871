"""Zones-and-conduits segmentation policy (IEC 62443 terms): language, loader, checker, suggester.

* ``load_policy(path)`` / ``parse_policy(text)`` → ``Policy`` or ``PolicyError`` (every problem,
  ``file:line:column: what``) — loader.py; the language is in docs/rules.md.
* ``PolicyChecker(policy, sink)`` — a pipeline consumer raising ``policy.*`` findings (checker.py).
* ``suggest_policy(pairs, ...)`` — a commented, deterministic draft policy from observed pairs (suggest.py).
"""
from __future__ import annotations

__all__ = ["PolicyError", "Problem", "load_policy", "parse_policy", "Policy", "UNZONED", "PolicyChecker",
           "suggest_policy"]

_LAZY = {"PolicyError": "errors", "Problem": "errors", "load_policy": "loader", "parse_policy": "loader",
         "Policy": "model", "UNZONED": "model", "PolicyChecker": "checker", "suggest_policy": "suggest"}
"""Name -> submodule, imported on first use: the alert catalogue imports ``policy.catalogue`` at
every ``analyze`` start, and the loader (PyYAML) and the checker (the parsers' specs) are needed
only with ``--policy`` or ``otwatch rules``."""


def __getattr__(name):
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value
    return value
