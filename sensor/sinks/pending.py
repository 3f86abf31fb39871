"""Records on their way into the outbox, held while the outbox refuses them.

``Pending(outbox, "alerts")``: ``add(items)`` holds records ``(kind, id,
severity, ts, body)``; ``flush()`` appends them in one transaction.  When the
outbox refuses (``StoreError``: disk full, the database locked past the wait,
a read-only file) the records stay and go with the next flush; the problem is
logged once (and again when it changes), counted in ``refused``.  Past
``max_pending`` the oldest held records are dropped and counted (``lost``),
and the next append that succeeds carries a ``loss`` record saying how many —
the capture never sees an exception and nothing is lost silently.
"""
from __future__ import annotations

import logging
import time
from typing import Iterable

from ..store import StoreError

log = logging.getLogger("otwatch.sinks")

MAX_PENDING = 50_000
"""Records held while the outbox refuses appends (~25 MB at ~500 bytes each)."""
LOSS_SEVERITY = "high"


class Pending:
    def __init__(self, outbox, what: str, max_pending: int = MAX_PENDING):
        self.outbox = outbox
        self.what = what
        self.max_pending = max(1, int(max_pending))
        self.items: list[tuple] = []
        self.counts = {"records": 0, "lost": 0, "refused": 0}
        self._unreported = 0
        self._last_error = ""

    def add(self, items: Iterable[tuple]) -> None:
        self.items.extend(items)
        over = len(self.items) - self.max_pending
        if over > 0:
            del self.items[:over]
            self.counts["lost"] += over
            self._unreported += over

    def flush(self) -> int:
        """Append what is held; returns the records appended (0 when refused: they stay held)."""
        if not self.items and not self._unreported:
            return 0
        items = list(self.items)
        if self._unreported:
            n, now = self._unreported, time.time()
            items.append(("loss", f"loss:{self.what}:{now:.6f}", LOSS_SEVERITY, now,
                          {"message": f"outbox unwritable: {n} {self.what} records not recorded", "dropped": n}))
        try:
            self.outbox.append_many(items)
        except StoreError as exc:
            self.counts["refused"] += 1
            if str(exc) != self._last_error:
                log.warning("%s not recorded in the outbox yet (%d waiting): %s", self.what, len(self.items), exc)
            self._last_error = str(exc)
            return 0
        if self._last_error:
            log.info("%s recorded in the outbox again (%d that waited)", self.what, len(self.items))
        self._last_error = ""
        self._unreported = 0
        self.counts["records"] += len(self.items)
        self.items = []
        return len(items)
