"""The TUI's policy for Python's cyclic garbage collector: collect between ticks, never in the middle of a key.

With automatic collection a young collection runs whenever enough container
objects were allocated, by any thread: during a max-speed replay that is the
pipeline's thread as often as the UI, and the UI thread stops for it wherever it
is (``GC_THRESHOLDS``' 100,000 young objects, set by ``clikit.tune_gc`` for the
pipeline, took up to 0.5 s on the loaded 2-core VM with 10,000 assets held: a
key that arrived meanwhile waited; docs/performance.md, issue 16).

``GcPolicy`` (installed by ``OtwatchApp`` on mount, undone on unmount):

* automatic collection is off while the app runs (``gc.disable``);
* ``at_rest(busy)`` is called by the app at the end of each tick (the
  tick's observations applied, the screen redrawn): when at least ``YOUNG``
  objects were allocated since the last collection it collects the young
  generation there, every ``MIDDLE_EVERY``-th time the middle one, and then
  ``gc.freeze()``: what survived two collections is long-lived (the
  inventory's rows, the table's cells) and leaves the collector's view
  instead of going to the oldest generation, so no collection at rest ever
  walks the 10,000 assets (the oldest generation stays empty).  While input is waiting (*busy*) it waits for the next tick, unless
  ``YOUNG_HARD`` objects are waiting (memory stays bounded when keys never stop);
* every ``THAW_S`` of wall time (and when the replay ends) the frozen objects are
  handed back and one full collection runs (cycles among them that died since
  are freed): memory stays bounded over a long live session, at the price of
  one full pause every ``THAW_S``;
* ``uninstall()`` puts back what the process had: enabled or not, the
  thresholds (``tune_gc``'s, set by the feed's thread meanwhile, are undone
  too), and no objects frozen by us.

``analyze`` and the headless sensor keep ``tune_gc``'s automatic thresholds.
"""
from __future__ import annotations

import gc
import time

YOUNG = 10_000
"""Objects allocated (net) since the last collection before the end of a tick collects the young generation
(CPython's default is 700; ``tune_gc`` 100,000): about a tick's allocations at max speed."""
YOUNG_HARD = 200_000
"""Collected even while input is waiting (a key stream that never stops must not grow memory without bound)."""
MIDDLE_EVERY = 10
"""Young collections per collection of the middle generation (as CPython's second threshold), followed by
``gc.freeze()`` of its survivors."""
THAW_S = 600.0
"""Seconds between two full collections of everything, frozen objects included (bounded memory, one pause)."""


class GcPolicy:
    def __init__(self, clock=time.monotonic):
        self.installed = False
        self.clock = clock
        self.collections = [0, 0]         # young, middle (then freeze) collections made at rest
        self.thaws = 0
        self.longest = 0.0                # longest collection made here, seconds (for the bench)
        self._saved = None
        self._young = 0
        self._thawed_at = 0.0

    def install(self) -> None:
        if self.installed:
            return
        self._saved = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
        gc.disable()
        self.installed = True
        self._thawed_at = self.clock()

    def uninstall(self) -> None:
        if not self.installed:
            return
        enabled, thresholds, frozen = self._saved
        if not frozen:
            gc.unfreeze()                 # ours only (nothing was frozen before): back in the oldest generation
        gc.set_threshold(*thresholds)
        if enabled:
            gc.enable()
        self.installed = False

    def at_rest(self, busy: bool = False, final: bool = False) -> None:
        """The end of a tick: collect if enough was allocated (see the module docstring)."""
        if not self.installed:
            return
        if final or self.clock() - self._thawed_at >= THAW_S:
            self._timed(self._thaw)
            return
        n = gc.get_count()[0]
        if n < YOUNG or (busy and n < YOUNG_HARD):
            return
        self._timed(self._collect)

    def _timed(self, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.longest = max(self.longest, time.perf_counter() - t0)

    def _collect(self) -> None:
        self._young += 1
        if self._young < MIDDLE_EVERY:
            gc.collect(0)
            self.collections[0] += 1
            return
        self._young = 0
        gc.collect(1)
        gc.freeze()                       # the survivors leave the collector's view (the oldest generation stays empty)
        self.collections[1] += 1

    def _thaw(self) -> None:
        if not self._saved[2]:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._young = 0
        self.thaws += 1
        self._thawed_at = self.clock()
