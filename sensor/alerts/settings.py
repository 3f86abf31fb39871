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

A key given to ``from_mapping`` may also be an ``fnmatch`` pattern (``"posture.opcua.*"``); the policy file
takes ``<prefix>.*`` (``posture.*``: every posture rule).  A rule's exact entry wins over a pattern, a longer
pattern over a shorter one.  The aggregator asks ``enabled(rule)``, ``severity_of(rule,
default)`` and ``allowed(rule, src, zone)`` per finding (cached per rule);
detectors ask ``threshold(rule, name, default)`` once at start.

**Enabled.**  ``enabled: true|false`` in the rule's entry (or a pattern's) decides; without one the catalogue's
``Rule.default_enabled`` does: every rule is on except the configuration posture findings
(``catalogue.FINDING_ONLY``), which the inventory keeps and which are alerts only when turned on, per rule
(``enabled: true``), as a category (``posture.*: {enabled: true}``) or with ``posture_alerts`` (the command
line's ``--posture-alerts``, the sensor config's ``posture_alerts: true``).  An explicit ``enabled: false``
wins over ``posture_alerts``.
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

    enabled: bool | None = None        # None: the catalogue's default (Rule.default_enabled)
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


def lookup(rules: Mapping[str, Any], rule: str) -> Any:
    """The entry of *rule* in *rules* (rule id or pattern -> setting): its own, else the longest matching
    ``fnmatch`` pattern's, else None (the one lookup: the aggregator's and the policy checker's)."""
    s = rules.get(rule)
    if s is None:
        best = -1
        for pat, v in rules.items():
            if len(pat) > best and any(c in pat for c in "*?[") and fnmatch.fnmatchcase(rule, pat):
                s, best = v, len(pat)
    return s


@dataclass
class AlertSettings:
    rules: dict[str, RuleSetting] = field(default_factory=dict)   # rule id or pattern -> setting
    posture_alerts: bool = False       # raise the finding-only posture rules as alerts (--posture-alerts)
    _cache: dict = field(default_factory=dict, repr=False)
    _enabled: dict = field(default_factory=dict, repr=False)

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None, where: str = "detections",
                     posture_alerts: bool = False) -> "AlertSettings":
        """Plain YAML (already parsed).  ValueError with a dotted path on any problem."""
        if not d:
            return cls(posture_alerts=posture_alerts)
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
            en = v.get("enabled")
            if en is not None and not isinstance(en, bool):
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
        return cls(out, posture_alerts)

    @classmethod
    def from_policy(cls, policy: Any, posture_alerts: bool = False) -> "AlertSettings":
        """From ``sensor.policy``'s loaded Policy (``policy.detections``: rule id -> RuleSetting)."""
        return cls(dict(getattr(policy, "detections", None) or {}), posture_alerts)

    # -- queries -------------------------------------------------------------------
    def setting(self, rule: str) -> RuleSetting:
        s = self._cache.get(rule)
        if s is None:
            s = self._cache[rule] = lookup(self.rules, rule) or _DEFAULT
        return s

    def enabled(self, rule: str) -> bool:
        """The entry's ``enabled`` when it says; else the catalogue's default (``posture_alerts`` turns the
        finding-only posture rules on)."""
        e = self._enabled.get(rule)
        if e is None:
            e = self.setting(rule).enabled
            if e is None:
                from .catalogue import RULES

                r = RULES.get(rule)
                e = r is None or r.default_enabled or (self.posture_alerts and r.category == "posture")
            self._enabled[rule] = e
        return e

    def finding_only(self, rule: str) -> bool:
        """Off by the catalogue's default, not by an ``enabled: false`` the operator wrote."""
        return not self.enabled(rule) and self.setting(rule).enabled is None

    def severity_of(self, rule: str, default: str) -> str:
        return self.setting(rule).severity or default

    def allowed(self, rule: str, src: str, zone: str = "") -> bool:
        s = self.setting(rule)
        return bool(s.allow) and s.allows(src, zone)

    def threshold(self, rule: str, name: str, default: float) -> float:
        return self.setting(rule).thresholds.get(name, default)
