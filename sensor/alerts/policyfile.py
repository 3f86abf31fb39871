"""The policy file for ``analyze --policy`` and the sensor: the policy and its detection settings.

Contract
--------
``load(path) -> (AlertSettings, policy)``: the file is loaded by the policy's
strict loader (``sensor.policy.loader``: every problem as
``file:line:column: what is wrong``, all at once), the settings come from the
loaded policy's ``detections`` (``RuleSetting`` records) and the policy is
returned for a ``PolicyChecker``.  Every problem is a ``PolicyFileError``
whose message starts with the path, escaped for the terminal — never a
traceback.  (There is one reader of the format: the policy loader.)
"""
from __future__ import annotations

from otwatch.parsers.common import escape

from .settings import AlertSettings

MAX_MESSAGE = 4096
"""Characters of the problem list shown (a file with hundreds of mistakes shows the first ones)."""


class PolicyFileError(Exception):
    pass


def load(path: str):
    from ..policy.errors import PolicyError
    from ..policy.loader import load_policy

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise PolicyFileError(escape(str(exc), MAX_MESSAGE)) from None
    return AlertSettings.from_policy(policy), policy
