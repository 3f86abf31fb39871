"""The alert model: ``Evidence`` → ``Finding`` (one occurrence) → ``Alert`` (aggregated).

Every field here is part of the stored schema (docs/alerts.md) and of every
sink's output; attacker-controlled strings (topics, device names, client ids)
are kept as received and escaped by each sink for its own syntax.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SEVERITIES = ("info", "low", "medium", "high", "critical")
"""Ordered; ``severity_rank('high') > severity_rank('medium')``."""
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

CATEGORIES = ("baseline", "policy", "posture", "protocol", "reconnaissance", "dos", "identity", "credentials",
              "command")
"""What raised it: a departure from the learned baseline, a segmentation-policy
violation, a security-posture finding, a protocol anomaly, a scan or sweep, a
flood, a changed device identity, guessing of credentials, a command from a
host that should not send it (appended later:
new categories only ever go at the end)."""

STATUSES = ("open", "acknowledged", "closed")
CLOSE_REASONS = ("resolved", "accepted")   # accepted = learned into the baseline


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule as a catalogue lists it: the one record every producer's rule table uses
    (``sensor.alerts.catalogue``, ``sensor.baseline.rules``, ``sensor.policy.catalogue``)."""

    id: str              # stable dotted id, never renamed once shipped
    severity: str        # default (SEVERITIES); the detection settings may override it
    category: str        # CATEGORIES
    title: str           # what an operator sees as the alert's name
    technique: str = ""  # ATT&CK for ICS id (catalogue.TECHNIQUES), "" when none fits
    thresholds: tuple = ()   # names its detection settings may set (``thresholds:``), read by the policy loader
    default_enabled: bool = True
    """False: a **finding only** by default (a configuration weakness the inventory keeps with its evidence,
    not an event): raised as an alert only when the detection settings turn it on (``enabled: true``, the
    ``posture.*`` switch, ``--posture-alerts``).  The catalogue is the one place that says which."""


def severity_rank(s: str) -> int:
    """0 (info) .. 4 (critical); unknown text ranks as info."""
    return _RANK.get(s, 0)


def parse_severity(s: str) -> str:
    """*s* as one of SEVERITIES (case-insensitive); ValueError otherwise (for options and settings files)."""
    v = str(s).strip().lower()
    if v not in _RANK:
        raise ValueError(f"unknown severity {s!r} (one of {', '.join(SEVERITIES)})")
    return v


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a finding was seen: enough to find the packet again."""

    source: str          # capture file path as given, or "iface:<name>" when live
    frame: int           # 1-based frame number within that source (Wireshark's)
    ts: float            # packet time
    flow_id: int = 0     # engine flow id (0 when not tied to a flow)


def alert_id(rule: str, key: tuple) -> str:
    """Stable id of a condition: the same rule and key give the same id, always."""
    h = hashlib.blake2b(repr((rule, tuple(key))).encode("utf-8", "backslashreplace"), digest_size=10)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Finding:
    """One occurrence of an alertable condition, as a producer reports it."""

    rule: str            # stable dotted rule id from the catalogue, e.g. "baseline.new_function_code"
    key: tuple           # what makes two occurrences "the same condition" (e.g. (client, server, fc))
    severity: str        # one of SEVERITIES (the catalogue's default, or the policy's override)
    category: str        # one of CATEGORIES
    message: str         # one line a plant engineer understands; may contain wire strings (escaped by sinks)
    evidence: Evidence
    src: str = ""        # client / initiator IP ("" when not applicable)
    dst: str = ""        # server / target IP
    src_asset: str = ""  # inventory asset ids when known
    dst_asset: str = ""
    src_zone: str = ""   # policy zones when a policy is loaded
    dst_zone: str = ""
    protocol: str = ""   # modbus | mqtt | opcua | tcp | ...
    port: int = 0
    technique: str = ""  # MITRE ATT&CK for ICS id, e.g. "T0855" ("" when none fits)
    details: dict = field(default_factory=dict)   # JSON-serialisable facts (function code, range, topic ...)

    @property
    def alert_id(self) -> str:
        return alert_id(self.rule, self.key)


@dataclass(slots=True)
class Alert:
    """An aggregated alert: every Finding with the same ``alert_id``."""

    id: str
    rule: str
    severity: str
    category: str
    message: str         # the first occurrence's message
    src: str
    dst: str
    src_asset: str
    dst_asset: str
    src_zone: str
    dst_zone: str
    protocol: str
    port: int
    technique: str
    first_ts: float
    last_ts: float
    count: int
    evidence: list       # [Evidence]: the first occurrences (bounded, see MAX_EVIDENCE) and the last
    details: dict
    status: str = "open"        # STATUSES
    close_reason: str = ""      # CLOSE_REASONS when closed
    updated: bool = True        # changed since last written (store/outbox bookkeeping; not persisted)

    @classmethod
    def from_finding(cls, f: Finding) -> "Alert":
        return cls(f.alert_id, f.rule, f.severity, f.category, f.message, f.src, f.dst, f.src_asset,
                   f.dst_asset, f.src_zone, f.dst_zone, f.protocol, f.port, f.technique,
                   f.evidence.ts, f.evidence.ts, 1, [f.evidence], dict(f.details))


MAX_EVIDENCE = 16
"""Evidence pointers kept per alert: the first MAX_EVIDENCE - 1 occurrences and
the latest one.  An alert that repeats a million times does not grow."""


def add_occurrence(a: Alert, f: Finding) -> None:
    """Fold one more occurrence of the same condition into ``a`` (bounded)."""
    a.count += 1
    ev = f.evidence
    if ev.ts < a.first_ts:
        a.first_ts = ev.ts
    if ev.ts > a.last_ts:
        a.last_ts = ev.ts
    if len(a.evidence) < MAX_EVIDENCE:
        a.evidence.append(ev)
    else:
        a.evidence[-1] = ev
    if severity_rank(f.severity) > severity_rank(a.severity):
        a.severity = f.severity
    a.updated = True


class AlertSink:
    """What producers hand findings to (the aggregator implements it; tests use a list)."""

    def raise_finding(self, f: Finding) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ListSink(AlertSink):
    """Collects findings in a list: for tests and for simple consumers."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def raise_finding(self, f: Finding) -> None:
        self.findings.append(f)


__all__ = ["SEVERITIES", "CATEGORIES", "STATUSES", "CLOSE_REASONS", "Rule", "severity_rank", "parse_severity", "Evidence", "Finding",
           "Alert", "alert_id", "add_occurrence", "MAX_EVIDENCE", "AlertSink", "ListSink"]
