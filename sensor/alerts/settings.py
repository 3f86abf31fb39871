"""Detection settings: which rules are on, their severities, thresholds and allow-lists.

Contract
--------
The settings live in the policy file's ``detections:`` section, one entry per
rule id (the format ``sensor.policy``'s loader reads and validates with
``file:line:column`` errors into ``RuleSetting`` records; ``from_mapping``
builds the same from a dict in code and tests, where a key may also be a
pattern):

```yaml
detections:
  protocol.modbus_unanswered: {enabled: false}
  recon.port_scan:
    severity: critical
    thresholds: {ports: 20, window: 120}
    allow: [10.10.0.5/32, engineering]       # sources (networks or zone names) exempt from the rule
```

A key given to ``from_mapping`` may also be an ``fnmatch`` pattern (``"posture.opcua.*"``).  The aggregator asks ``enabled(rule)``, ``severity_of(rule,
default)`` and ``allowed(rule, src, zone)`` per finding (cached per rule);
detectors ask ``threshold(rule, name, default)`` once at start.
"""
from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping

from .model import parse_severity

RULE_KEYS = ("enabled", "severity", "thresholds", "allow")


@dataclass(frozen=True)
class RuleSetting:
    """The settings of one alert rule, any producer's (policy, baseline, posture, scans ...): the one
    definition, built by the policy loader from a file's ``detections:`` (with ``rule`` and ``line``
    set) and by ``AlertSettings.from_mapping`` in code."""

    enabled: bool = True
    severity: str | None = None        # overrides the catalogue's default
    thresholds: dict = field(default_factory=dict)   # name -> number
    allow: tuple = ()                  # ip_network objects and zone names exempt from the rule
    rule: str = ""                     # the rule id (or pattern) it was written for
    line: int = 0                      # where it was written in the policy file (0: not from a file)

    def allows(self, ip: str = "", zone: str = "") -> bool:
        """Is an address (or its zone) on this rule's allow-list?"""
        return allow_listed(self.allow, ip, zone)


def allow_listed(allow: tuple, ip: str = "", zone: str = "") -> bool:
    """Is *ip* in one of the networks of *allow*, or *zone* one of its zone names?"""
    for a in allow:
        if isinstance(a, str):
            if zone and a == zone:
                return True
        elif ip:
            try:
                if ipaddress.ip_address(ip) in a:
                    return True
            except ValueError:
                pass
    return False


_DEFAULT = RuleSetting()


@dataclass
class AlertSettings:
    rules: dict[str, RuleSetting] = field(default_factory=dict)   # rule id or pattern -> setting
    _cache: dict = field(default_factory=dict, repr=False)

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None, where: str = "detections") -> "AlertSettings":
        """Plain YAML (already parsed).  ValueError with a dotted path on any problem."""
        if not d:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping of rule id -> settings")
        out = {}
        for rule, v in d.items():
            p = f"{where}.{rule}"
            if not isinstance(rule, str) or not rule:
                raise ValueError(f"{where}: rule ids are strings")
            if v is None:
                v = {}
            if not isinstance(v, Mapping):
                raise ValueError(f"{p}: expected a mapping ({', '.join(RULE_KEYS)})")
            unknown = sorted(map(str, set(v) - set(RULE_KEYS)))
            if unknown:
                raise ValueError(f"{p}: unknown key(s) {', '.join(unknown)} (known: {', '.join(RULE_KEYS)})")
            en = v.get("enabled", True)
            if not isinstance(en, bool):
                raise ValueError(f"{p}.enabled: expected true or false")
            sev = v.get("severity")
            if sev is not None:
                try:
                    sev = parse_severity(sev)
                except ValueError as exc:
                    raise ValueError(f"{p}.severity: {exc}") from None
            thr = {}
            for k, x in (v.get("thresholds") or {}).items():
                if isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0:
                    raise ValueError(f"{p}.thresholds.{k}: expected a positive number")
                thr[str(k)] = x
            allow = []
            for a in v.get("allow") or ():
                if not isinstance(a, str):
                    raise ValueError(f"{p}.allow: expected networks or zone names")
                try:
                    allow.append(ipaddress.ip_network(a, strict=False))
                except ValueError:
                    allow.append(a)
            out[rule] = RuleSetting(en, sev, thr, tuple(allow), rule)
        return cls(out)

    @classmethod
    def from_policy(cls, policy: Any) -> "AlertSettings":
        """From ``sensor.policy``'s loaded Policy (``policy.detections``: rule id -> RuleSetting)."""
        return cls(dict(getattr(policy, "detections", None) or {}))

    # -- queries -------------------------------------------------------------------
    def setting(self, rule: str) -> RuleSetting:
        s = self._cache.get(rule)
        if s is None:
            s = self.rules.get(rule)
            if s is None:
                for pat, v in self.rules.items():
                    if any(c in pat for c in "*?[") and fnmatch.fnmatchcase(rule, pat):
                        s = v
                        break
            s = self._cache[rule] = s or _DEFAULT
        return s

    def enabled(self, rule: str) -> bool:
        return self.setting(rule).enabled

    def severity_of(self, rule: str, default: str) -> str:
        return self.setting(rule).severity or default

    def allowed(self, rule: str, src: str, zone: str = "") -> bool:
        s = self.setting(rule)
        return bool(s.allow) and s.allows(src, zone)

    def threshold(self, rule: str, name: str, default: float) -> float:
        return self.setting(rule).thresholds.get(name, default)
