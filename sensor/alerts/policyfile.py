"""The policy file for ``analyze --policy``: its detection settings, and the policy itself when the policy package is installed.

Contract
--------
``load(path) -> (AlertSettings, policy | None)``.  With ``sensor.policy``
installed, the file is loaded by its strict loader (every problem as
``file:line:column``) and the settings come from the loaded policy's
``detections``; the policy is returned for a ``PolicyChecker``.  Without it,
the YAML is read with the safe loader and only its ``detections:`` section is
used (``settings.AlertSettings.from_mapping``).  Every problem is a
``PolicyFileError`` whose message starts with the path — never a traceback.
"""
from __future__ import annotations

import yaml

from otwatch.parsers.common import escape

from .settings import AlertSettings

SECTION = "detections"
MAX_BYTES = 16 * 1024 * 1024
"""A policy file larger than this is refused (a policy is a few kB; this is a guard, not a format limit)."""


class PolicyFileError(Exception):
    pass


def load(path: str):
    try:
        from ..policy.errors import PolicyError
        from ..policy.loader import load_policy
    except ImportError:
        return load_detection_settings(path), None
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise PolicyFileError(escape(str(exc), 4096)) from None
    return AlertSettings.from_policy(policy), policy


def load_detection_settings(path: str) -> AlertSettings:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PolicyFileError(f"{escape(path)}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise PolicyFileError(f"{escape(path)}: larger than {MAX_BYTES} bytes")
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"{escape(path)}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise PolicyFileError(f"{escape(path)}{where}: {escape(str(getattr(exc, 'problem', '') or exc))}") from None
    if doc is None:
        return AlertSettings()
    if not isinstance(doc, dict):
        raise PolicyFileError(f"{escape(path)}: expected a mapping at the top level")
    try:
        return AlertSettings.from_mapping(doc.get(SECTION), SECTION)
    except ValueError as exc:
        raise PolicyFileError(f"{escape(path)}: {escape(str(exc))}") from None
