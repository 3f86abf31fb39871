"""Policy errors: each one ``file:line:column: what is wrong``.

Lines and columns are 1-based, as editors and compilers print them (PyYAML's
marks are 0-based; ``Problem`` converts once).  The loader collects every
problem it finds and raises one ``PolicyError`` holding all of them, sorted by
position, so a user fixes a file in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong in a policy file."""

    line: int        # 1-based
    column: int      # 1-based
    message: str
    path: str = ""
    code: str = ""   # stable short id of the kind of problem (docs/rules.md lists them all)

    def __str__(self) -> str:
        tail = f" [{self.code}]" if self.code else ""
        return f"{self.path or '<policy>'}:{self.line}:{self.column}: {self.message}{tail}"


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


PROBLEM_CODES = (
    # reading the file
    "unreadable", "not-utf8", "too-large", "too-many-nodes", "empty-file", "yaml-syntax", "duplicate-key",
    # shape and types
    "not-mapping", "merge-key", "bad-key", "unknown-key", "missing-key", "not-list", "not-text", "not-integer",
    "not-boolean", "out-of-range", "bad-choice", "bad-range", "backwards-range",
    # top level
    "missing-version", "bad-version", "missing-zones",
    # zones
    "bad-name", "reserved-zone", "no-members", "bad-network", "host-bits", "bad-mac", "empty-asset", "bad-level",
    "zone-overlap", "listed-twice",
    # conduits and rules
    "unknown-zone", "empty-allow", "ports-not-applicable", "wrong-section", "bad-topic-filter", "unknown-service",
    # detections
    "bad-rule-id", "unknown-rule", "bad-threshold", "bad-allow-entry",
)
"""Every ``Problem.code`` the loader can report (docs/rules.md explains each; a test keeps them in step)."""

__all__ = ["Problem", "PolicyError", "PROBLEM_CODES"]
