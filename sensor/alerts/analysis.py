"""Alerts for ``otwatch analyze``: build the stage and its sinks, report, decide the exit code.

Contract
--------
``OfflineAlerts(settings, inventory=None, db=None, json_stream=None)`` owns
the ``AlertBook`` and ``AlertStage`` of one analysis; ``consumers`` go into
the pipeline after the inventory; ``start_file(path, frame_base)`` before
each capture (evidence names the file and counts frames within it);
``finish()`` after ``Pipeline.finish()`` and before the inventory is closed.
``render()`` is the summary's alert section; ``exit_code(fail_on)`` is 1 when
an alert of this run is at or above *fail_on* (a severity name), else 0.
"""
from __future__ import annotations

from typing import IO, Any

from otwatch.parsers.common import escape

from .aggregate import AlertBook
from .context import Context
from .jsonl import JSONLAlerts
from .model import SEVERITIES, Alert, severity_rank
from .settings import AlertSettings
from .stage import AlertStage

SHOWN = 25
"""Alerts listed in the summary (most severe first); the rest are counted (``otwatch alerts`` lists all)."""


def baseline_detector(path: str, sink) -> Any:
    """The baseline package's detector for the baseline stored at *path* (ImportError when not installed)."""
    from ..baseline.detect import Detector
    from ..baseline.store import load_baseline

    return Detector(load_baseline(path, missing_ok=False), sink)


class OfflineAlerts:
    def __init__(self, settings: AlertSettings | None = None, inventory: Any = None, db: Any = None,
                 json_stream: IO[str] | None = None, report_new_assets: bool | None = None):
        self.settings = settings or AlertSettings()
        self.book = AlertBook(self.settings)
        self.ctx = Context()
        self.stage = AlertStage(self.book, self.ctx, inventory, self.settings, report_new_assets)
        self.store = None
        if db is not None:
            from .store import AlertStore

            self.store = AlertStore(db)
            self.book.add_listener(self.store)
        self.jsonl = JSONLAlerts(json_stream) if json_stream is not None else None
        if self.jsonl is not None:
            self.book.add_listener(self.jsonl)
        self.worst = -1
        self.book.add_listener(self._note)
        self.by_id: dict[str, Alert] = {}
        self.producers: list = []

    def add_producer(self, consumer: Any) -> None:
        """Another producer raising into ``sink`` (policy checker, baseline detector): fed before the stage,
        and told the source of each capture (its ``source`` attribute) by ``start_file``."""
        self.producers.append(consumer)

    @property
    def consumers(self) -> list:
        return [*self.producers, self.stage]

    @property
    def sink(self) -> AlertBook:
        """Where other producers (policy checker, baseline detector) raise their findings."""
        return self.book

    def start_file(self, path: str, frame_base: int) -> None:
        self.ctx.set_source(path, frame_base)
        for p in self.producers:
            if hasattr(p, "source"):
                p.source = path

    def _note(self, changes) -> None:
        for c in changes:
            r = severity_rank(c.alert.severity)
            if r > self.worst:
                self.worst = r
            self.by_id[c.alert.id] = c.alert     # the summary lists every alert of the run, even if forgotten

    def finish(self) -> None:
        self.stage.finish()

    def alerts(self) -> list[Alert]:
        return sorted(self.by_id.values(), key=lambda a: (-severity_rank(a.severity), a.first_ts, a.rule, a.id))

    def exit_code(self, fail_on: str | None) -> int:
        if not fail_on or fail_on == "none":
            return 0
        return 1 if self.worst >= severity_rank(fail_on) else 0

    def render(self) -> str:
        al = self.alerts()
        c = self.book.counts
        out = ["", f"Alerts: {len(al)}"]
        if al:
            counts = {s: sum(1 for a in al if a.severity == s) for s in reversed(SEVERITIES)}
            out[-1] += "  (" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")"
        for a in al[:SHOWN]:
            who = escape(a.src or "-", 40) + (" → " + escape(a.dst, 40) if a.dst else "")
            if a.port:
                who += f":{a.port}"
            ev = a.evidence[0].frame if a.evidence else 0
            out.append(f"  {a.severity.upper():<8} {a.id[:12]}  {escape(a.rule, 40):<34} ×{a.count:<6} {who}"
                       f"  frame {ev}  {escape(a.message, 120)}")
        if len(al) > SHOWN:
            out.append(f"  … {len(al) - SHOWN} more (otwatch alerts)")
        if c["overflow"] or c["disabled"]:
            out.append(f"  findings dropped: {c['overflow']} over the alert cap, {c['disabled']} of disabled rules")
        if c.get("finding_only"):
            from ..report import plural
            out.append(f"  {plural(c['finding_only'], 'configuration posture finding')} kept in the inventory, not alerted "
                       f"(otwatch inventory show; --posture-alerts raises them)")
        return "\n".join(out) + "\n"
