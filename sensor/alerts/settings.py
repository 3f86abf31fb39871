"""Detection settings: which rules are on, their severities and detector thresholds.

Contract
--------
``AlertSettings.from_mapping(d)`` reads the detection-settings section of a
policy file (already parsed YAML; the policy loader reports positions of
errors in the file, this only raises ``ValueError`` with a dotted path):

```yaml
detections:
  disable: [protocol.modbus_unanswered, "baseline.period_*"]   # rule ids or fnmatch patterns
  severity: {recon.port_scan: critical, "posture.*": low}       # overrides
  thresholds: {recon.port_scan.ports: 20, recon.window: 120}    # detector knobs (docs/alerts.md)
```

``enabled(rule)`` and ``severity_of(rule, default)`` are what the aggregator
asks per finding; both are cached per rule id, so a pattern costs once.
``threshold(name, default)`` is what detectors ask once at start.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping

from .model import parse_severity

KNOWN_KEYS = ("disable", "severity", "thresholds")


@dataclass
class AlertSettings:
    disabled: tuple[str, ...] = ()              # rule ids or fnmatch patterns
    severity: dict[str, str] = field(default_factory=dict)   # rule id or pattern -> severity
    thresholds: dict[str, float] = field(default_factory=dict)
    _enabled_cache: dict = field(default_factory=dict, repr=False)
    _severity_cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None, where: str = "detections") -> "AlertSettings":
        if not d:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        unknown = sorted(set(d) - set(KNOWN_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(KNOWN_KEYS)})")
        dis = d.get("disable") or ()
        if isinstance(dis, str) or not all(isinstance(x, str) for x in dis):
            raise ValueError(f"{where}.disable: expected a list of rule ids")
        sev = {}
        for k, v in (d.get("severity") or {}).items():
            try:
                sev[str(k)] = parse_severity(v)
            except ValueError as exc:
                raise ValueError(f"{where}.severity.{k}: {exc}") from None
        thr = {}
        for k, v in (d.get("thresholds") or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{where}.thresholds.{k}: expected a positive number")
            thr[str(k)] = v
        return cls(tuple(dis), sev, thr)

    def enabled(self, rule: str) -> bool:
        r = self._enabled_cache.get(rule)
        if r is None:
            r = self._enabled_cache[rule] = not any(p == rule or fnmatch.fnmatchcase(rule, p) for p in self.disabled)
        return r

    def severity_of(self, rule: str, default: str) -> str:
        key = (rule, default)
        r = self._severity_cache.get(key)
        if r is None:
            r = self.severity.get(rule)
            if r is None:
                for pat, sev in self.severity.items():
                    if fnmatch.fnmatchcase(rule, pat):
                        r = sev
                        break
            r = self._severity_cache[key] = r or default
        return r

    def threshold(self, name: str, default: float) -> float:
        return self.thresholds.get(name, default)
