"""The policy file for ``analyze --policy`` and the sensor: the policy and its detection settings.

Contract
--------
``load(path, posture_alerts=False) -> (AlertSettings, policy)``: the file is loaded by the policy's
strict loader (``sensor.policy.loader``: every problem as
``file:line:column: what is wrong``, all at once), the settings come from the
loaded policy's ``detections`` (``RuleSetting`` records) and the policy is
returned for a ``PolicyChecker``.  Problems are one ``PolicyFileError``:
one line per problem, ``file:line:column: what is wrong``, each escaped for
the terminal on its own — never a traceback.  (There is one reader of the format: the policy loader.)
"""
from __future__ import annotations

from otwatch.parsers.common import escape

from .settings import AlertSettings

MAX_PROBLEMS = 50
"""Problems shown, one line each (a file with hundreds of mistakes shows the first ones and a count)."""
MAX_LINE = 1000
"""Characters of one problem line (it quotes what the file says)."""


class PolicyFileError(Exception):
    pass


def load(path: str, posture_alerts: bool = False):
    from ..policy.errors import PolicyError
    from ..policy.loader import load_policy

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        lines = [escape(str(p), MAX_LINE) for p in exc.problems[:MAX_PROBLEMS]]
        if len(exc.problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(exc.problems) - MAX_PROBLEMS} more")
        raise PolicyFileError("\n".join(lines)) from None
    return AlertSettings.from_policy(policy, posture_alerts), policy
