"""The worker side: a capture (file or interface) through the ``Pipeline`` in a thread.

Contract
--------
``feed = ReplayFeed(path, speed)`` / ``LiveFeed(interface)``; ``feed.start()``
runs the pipeline in a daemon thread; the UI calls ``feed.poll()`` (a batch
``(observations, stats)`` or None, never blocking), ``done()``, ``empty()``,
``stop()``.

* Observations cross over a bounded queue of batches (``QUEUE_BATCHES`` ×
  ``BATCH``): when the UI falls behind, the pipeline waits (back-pressure), so
  nothing is dropped and memory stays bounded.
* A batch is handed over when it holds ``BATCH`` observations or
  ``HAND_OVER_S`` have passed, so a slow trickle still shows up promptly.
* A link's aggregates come over whole (``observe_aggregates``: one
  ``LinkAggregates``, counted as its rows), so the pipeline stays on its bulk
  path and the UI thread hands each consumer the batch in one call
  (``model.LiveModel.tick``; docs/architecture.md, "Aggregates in bulk").
* ``speed``: ``1`` replays at packet time, ``10`` ten times faster, ``0`` (max)
  as fast as the pipeline goes.  Pacing sleeps in the worker against the
  observations' packet time, never in the UI.
* The aggregate interval is ``INTERVAL_S`` of packet time, so message rates
  move every second instead of once a minute.
* ``limits``: the pipeline's ``Limits`` (``otwatch tui --memcap``; default the
  default memcap shared out, as ``analyze`` and ``sensor``).
* Errors (unreadable capture, capture device gone) end the feed with
  ``error`` set to one line; the UI shows it.
"""
from __future__ import annotations

import os
import queue
import threading
import time

BATCH = 512
QUEUE_BATCHES = 64
"""At most 64 × 512 observations in flight between the worker and the UI."""
HAND_OVER_S = 0.1
INTERVAL_S = 1.0
"""Aggregate interval (packet time) for the TUI's pipeline: rates per second."""
SPEEDS = {"1x": 1.0, "10x": 10.0, "max": 0.0}


class _Feed:
    mode = "feed"

    def __init__(self, limits=None):
        from otwatch.parsers.budget import DEFAULT_BUDGET_LIMITS

        self.limits = limits if limits is not None else DEFAULT_BUDGET_LIMITS
        """The pipeline's limits: the memcap shared out (``--memcap``; parsers/budget.py)."""
        self.q: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        self._stop = threading.Event()
        self._done = threading.Event()
        self.thread: threading.Thread | None = None
        self.error = ""
        self._pending: list = []
        self._pending_n = 0             # observations in _pending, a LinkAggregates counted as its rows
        self._last_put = time.monotonic()
        self.pipe = None
        self.extra: dict = {}

    # -- UI side ---------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._main, name=f"otwatch-{self.mode}", daemon=True)
        self.thread.start()

    def poll(self):
        try:
            return self.q.get_nowait()
        except queue.Empty:
            return None

    def done(self) -> bool:
        return self._done.is_set()

    def empty(self) -> bool:
        return self.q.empty()

    def stop(self) -> None:
        self._stop.set()
        t = self.thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)

    # -- worker side -------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self.run()
        except Exception as exc:   # noqa: BLE001 - shown in the UI, never a traceback on the terminal
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self._hand_over(force=True)
            except _Stopped:            # the UI went away (q during a replay): nothing to hand over
                pass
            finally:
                self._done.set()

    def observe(self, obs) -> None:
        """The pipeline consumer (runs in the worker)."""
        self._pace(obs)
        self._pending.append(obs)
        self._pending_n += 1
        if self._pending_n >= BATCH or time.monotonic() - self._last_put >= HAND_OVER_S:
            self._hand_over()

    def observe_aggregates(self, batch) -> None:
        """The pipeline's bulk consumer interface (runs in the worker): a link's aggregates as one
        ``LinkAggregates``, passed on whole (the UI routes it to each consumer's bulk path)."""
        self._pace(batch)
        self._pending.append(batch)
        self._pending_n += len(batch.rows)
        if self._pending_n >= BATCH or time.monotonic() - self._last_put >= HAND_OVER_S:
            self._hand_over()

    def _pace(self, obs) -> None:
        pass

    def _stats(self) -> dict:
        st = self.pipe.stats() if self.pipe is not None else {}
        st.update(self.extra)
        return st

    def _hand_over(self, force: bool = False) -> None:
        if not self._pending and not force:
            return
        item = (self._pending, self._stats())
        self._pending = []
        self._pending_n = 0
        self._last_put = time.monotonic()
        while not self._stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _pipeline(self):
        from ..clikit import tune_gc
        from ..pipeline import Pipeline, Settings

        tune_gc()       # as analyze and sensor (process-wide: the UI thread shares the collector)
        self.pipe = Pipeline([self], Settings(interval=INTERVAL_S, limits=self.limits))
        return self.pipe


class _Stopped(Exception):
    """The UI went away: the worker unwinds."""


class ReplayFeed(_Feed):
    mode = "replay"

    def __init__(self, path: str, speed: float = 0.0, limits=None):
        super().__init__(limits)
        self.path = path
        self.speed = speed
        self._t0 = None          # (packet time, wall time) of the first paced observation
        self.size = os.path.getsize(path) if os.path.exists(path) else None

    def _pace(self, obs) -> None:
        if self._stop.is_set():
            raise _Stopped
        if not self.speed:
            return
        ts = getattr(obs, "ts", None)
        if not ts:
            return
        if self._t0 is None:
            self._t0 = (ts, time.monotonic())
            return
        due = self._t0[1] + (ts - self._t0[0]) / self.speed
        wait = due - time.monotonic()
        if wait > 0:
            self._hand_over()                 # show what we have before sleeping
            while wait > 0 and not self._stop.is_set():
                time.sleep(min(wait, 0.05))
                wait = due - time.monotonic()

    def run(self) -> None:
        pipe = self._pipeline()

        def progress(done: int, total: int | None, packets: int) -> None:
            if total:
                self.extra["progress"] = min(done / total, 1.0)

        try:
            pipe.run_file(self.path, progress=progress)
            pipe.finish()
            self.extra["progress"] = 1.0
        except _Stopped:
            return


class LiveFeed(_Feed):
    mode = "live"

    def __init__(self, interface: str, bpf: str = "", limits=None):
        super().__init__(limits)
        self.interface = interface
        self.bpf = bpf

    def run(self) -> None:
        from ..live.capture import open_live
        from ..live.loop import SensorLoop

        cap = open_live(self.interface, bpf=self.bpf)
        pipe = self._pipeline()
        loop = SensorLoop(cap, pipe, f"iface:{self.interface}", heartbeat=1.0,
                          on_heartbeat=[lambda st: self.extra.update(kernel_dropped=st.get("kernel_dropped", 0))])
        watcher = threading.Thread(target=lambda: (self._stop.wait(), loop.stop()), daemon=True)
        watcher.start()
        try:
            loop.run()
        except _Stopped:
            pass
        finally:
            cap.close()


def parse_speed(text: str) -> float:
    if text not in SPEEDS:
        raise ValueError(f"speed must be one of {', '.join(SPEEDS)}")
    return SPEEDS[text]


__all__ = ["ReplayFeed", "LiveFeed", "parse_speed", "SPEEDS", "BATCH", "QUEUE_BATCHES"]
