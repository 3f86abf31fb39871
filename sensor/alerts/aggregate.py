"""AlertBook: the aggregator every producer raises findings into (an ``AlertSink``).

Contract
--------
* ``raise_finding(f)``: a disabled rule, or a source on the rule's
  allow-list (``settings.allowed``), is counted and dropped (a rule off by
  the catalogue's default, a configuration posture finding, in
  ``counts["finding_only"]``: the inventory keeps it); a severity
  override replaces the finding's severity; the finding is folded into the
  in-memory ``Alert`` with its ``alert_id`` (``model.add_occurrence``: count,
  first/last time, bounded evidence), or a new one is opened.
* Memory is bounded: at most ``max_alerts`` alerts are held.  When full, the
  least recently changed alert that listeners have already been told about is
  forgotten (the store has it; its next occurrence starts a fresh in-memory
  record whose counts the store adds up).  When every held alert has unflushed
  changes the finding is dropped and counted in ``counts["overflow"]`` (and
  per rule in ``overflow_by_rule``) — never silently.
* **Folded rules** (``catalogue.FOLDED``): a baseline finding that names the
  same attack as a built-in detector's rule (a brute force, a sweep) is raised
  as that rule's finding, with that rule's key, category and technique (its
  own rule in ``details["folded_from"]``), after the settings of both rules
  were applied (disabled or allowed by either: dropped).  The two producers
  see the same packets, so an occurrence whose frame the alert already
  counted from the other rule, among its last ``FRAMES_REMEMBERED`` (for the
  ``FRAME_ALERTS`` most recently raised such alerts), adds no
  count and no evidence (only a higher severity).  One attack, one alert,
  counted once per packet.
* ``flush()`` hands listeners one ``AlertChange`` per alert changed since the
  last flush (``delta``: occurrences since then, ``new``: first time this book
  saw the id) and returns them.  Listeners are the store, the JSON lines sink,
  the summary; they are called in order, at most once per alert per flush.
* ``alerts()`` is what is held now (for the summary at the end of analyze).
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from .catalogue import FOLDED, RULES, folded_key
from .model import Alert, AlertSink, Finding, add_occurrence, severity_rank
from .settings import AlertSettings

MAX_ALERTS = 10_000
"""Alerts held in memory.  A scan of a /16 keyed per target could mint 65,536;
10,000 keeps a few MB and is far more than an operator reads.  Past it, flushed
alerts are forgotten (they are stored) and the rest is counted as overflow."""

FRAMES_REMEMBERED = 32
"""Occurrences (source, frame, rule) remembered per alert of a folded rule: the two producers raise a packet's
findings within the same observation, or a few apart (a detector's samples, at most 15), never thousands apart."""
FRAME_ALERTS = 1024
"""Alerts of folded rules whose recent occurrences are remembered (the least recently raised forgotten first):
the two producers raise into the same alert within moments of each other, so a flood of host-scan alerts from
spoofed sources costs at most this many small deques, not one per alert held."""
FOLD_TARGETS = frozenset(FOLDED.values())


@dataclass(frozen=True, slots=True)
class AlertChange:
    alert: Alert
    delta: int        # occurrences since the previous flush
    new: bool         # first time this book held this id (the store decides whether it is new to the database)


class AlertBook(AlertSink):
    def __init__(self, settings: AlertSettings | None = None, max_alerts: int = MAX_ALERTS,
                 listeners: Iterable[Callable[[list[AlertChange]], None]] = ()):
        self.settings = settings or AlertSettings()
        self.max_alerts = max_alerts
        self.listeners = list(listeners)
        self._alerts: OrderedDict[str, Alert] = OrderedDict()   # least recently changed first
        self._delta: dict[str, int] = {}        # id -> occurrences since the last flush
        self._new: set[str] = set()
        self.counts = {"findings": 0, "disabled": 0, "finding_only": 0, "allowed": 0, "overflow": 0, "forgotten": 0, "flushes": 0}
        self.overflow_by_rule: dict[str, int] = {}
        self.disabled_by_rule: dict[str, int] = {}
        self._frames: OrderedDict[str, deque] = OrderedDict()   # folded rule's alert -> recent (source, frame, rule)
        self.seen_ids: set[str] = set()
        """Every id raised in this run (bounded by the catalogue x keys actually raised; ids only)."""

    def add_listener(self, fn: Callable[[list[AlertChange]], None]) -> None:
        self.listeners.append(fn)

    # -- AlertSink ---------------------------------------------------------
    def raise_finding(self, f: Finding) -> None:
        self.counts["findings"] += 1
        s = self.settings
        if not s.enabled(f.rule):
            if s.finding_only(f.rule):      # off by the catalogue's default: the inventory keeps the finding
                self.counts["finding_only"] += 1
                return
            self.counts["disabled"] += 1
            self.disabled_by_rule[f.rule] = self.disabled_by_rule.get(f.rule, 0) + 1
            return
        if s.allowed(f.rule, f.src, f.src_zone):
            self.counts["allowed"] += 1
            return
        origin = f.rule
        target = FOLDED.get(origin)
        if target is not None:
            if not s.enabled(target):
                self.counts["disabled"] += 1
                self.disabled_by_rule[origin] = self.disabled_by_rule.get(origin, 0) + 1
                return
            if s.allowed(target, f.src, f.src_zone):
                self.counts["allowed"] += 1
                return
            r = RULES[target]
            sev = max(s.severity_of(origin, f.severity), s.severity_of(target, r.severity), key=severity_rank)
            f = replace(f, rule=target, key=folded_key(target, f.src, f.dst, f.port), category=r.category,
                        technique=r.technique, severity=sev, details=dict(f.details, folded_from=origin))
        else:
            sev = s.severity_of(f.rule, f.severity)
            if sev != f.severity:
                f = replace(f, severity=sev)
        aid = f.alert_id
        a = self._alerts.get(aid)
        if f.rule in FOLD_TARGETS and self._counted_already(aid, f, origin):
            if a is not None and severity_rank(f.severity) > severity_rank(a.severity):
                a.severity = f.severity
                a.updated = True
                self._delta.setdefault(aid, 0)
            return
        if a is not None:
            add_occurrence(a, f)
            self._alerts.move_to_end(aid)
        else:
            if len(self._alerts) >= self.max_alerts and not self._forget_one():
                self.counts["overflow"] += 1
                self.overflow_by_rule[f.rule] = self.overflow_by_rule.get(f.rule, 0) + 1
                return
            a = self._alerts[aid] = Alert.from_finding(f)
            self._new.add(aid)
            self.seen_ids.add(aid)
        self._delta[aid] = self._delta.get(aid, 0) + 1

    def _counted_already(self, aid: str, f: Finding, origin: str) -> bool:
        """Whether another rule folded into *aid* already counted this packet (and remember this one)."""
        seen = self._frames.get(aid)
        if seen is None:
            if len(self._frames) >= FRAME_ALERTS:
                self._frames.popitem(last=False)
            seen = self._frames[aid] = deque(maxlen=FRAMES_REMEMBERED)
        else:
            self._frames.move_to_end(aid)
        ev = f.evidence
        if any(s == ev.source and fr == ev.frame and o != origin for s, fr, o in seen):
            return True
        seen.append((ev.source, ev.frame, origin))
        return False

    def _forget_one(self) -> bool:
        for aid in self._alerts:            # oldest change first
            if aid not in self._delta:
                del self._alerts[aid]
                self.counts["forgotten"] += 1
                return True
        return False

    # -- output --------------------------------------------------------------
    def flush(self) -> list[AlertChange]:
        if not self._delta:
            return []
        changes = [AlertChange(self._alerts[aid], n, aid in self._new) for aid, n in self._delta.items()]
        self._delta = {}
        self._new = set()
        self.counts["flushes"] += 1
        for fn in self.listeners:
            fn(changes)
        for c in changes:
            c.alert.updated = False
        return changes

    def alerts(self) -> list[Alert]:
        return list(self._alerts.values())

    def get(self, aid: str) -> Alert | None:
        return self._alerts.get(aid)

    def __len__(self) -> int:
        return len(self._alerts)
