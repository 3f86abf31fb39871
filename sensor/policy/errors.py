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

    def __str__(self) -> str:
        return f"{self.path or '<policy>'}:{self.line}:{self.column}: {self.message}"


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


__all__ = ["Problem", "PolicyError"]
