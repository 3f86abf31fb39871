"""The sensor loop: capture → engine → consumers, with heartbeats, reloads and a clean stop.

Contract::

    loop = SensorLoop(capture, pipeline, source="iface:eth1", heartbeat=60.0,
                      on_heartbeat=[...], on_reload=callable)
    loop.run()          # until stop() (SIGTERM/SIGINT); then flushes everything and returns
    loop.stop(); loop.reload()     # safe from signal handlers: they only set flags

The capture writes pcap records for a ring block at a time into one reused
4 MiB buffer; the engine walks them with its file loop (``Pipeline.feed_chunk``).
The buffer is handed over when it is half full or ``FEED_EVERY`` seconds have
passed, so a quiet network still sees its packets promptly.  Wall-clock time is
used only here, for heartbeats and hand-over; everything the engine and
consumers decide runs on packet time, as with a file.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable

log = logging.getLogger("otwatch.sensor")

BUF_BYTES = 4 * 1024 * 1024
"""The reused capture buffer (as the file source's).  One ring block of libpcap's
default TPACKET_V3 block size (~1 MiB at a 32 MB buffer) always fits in half of it."""
FEED_EVERY = 0.05
"""Seconds at most between hand-overs to the engine when traffic is light."""


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class SensorLoop:
    def __init__(self, capture, pipeline, source: str, heartbeat: float = 60.0,
                 on_heartbeat: list[Callable[[dict], None]] | None = None,
                 on_reload: Callable[[], None] | None = None, extra_stats: Callable[[], dict] | None = None):
        self.capture = capture
        self.pipeline = pipeline
        self.source = source
        self.heartbeat = heartbeat
        self.on_heartbeat = list(on_heartbeat or [])
        self.on_reload = on_reload
        self.extra_stats = extra_stats
        self._stop = False
        self._reload = False
        self.started = time.time()
        self.beats = 0
        self._last_packets = 0
        self._last_beat = time.monotonic()

    def stop(self, *_a) -> None:
        self._stop = True
        self.capture.breakloop()

    def reload(self, *_a) -> None:
        self._reload = True

    def stats(self) -> dict:
        eng = self.pipeline.stats()
        cap = self.capture.stats() or {}
        now = time.monotonic()
        pk = eng.get("capture.packets", 0)
        span = max(now - self._last_beat, 1e-6)
        d = {"source": self.source, "uptime": round(time.time() - self.started, 1),
             "packets": pk, "packets_per_s": round((pk - self._last_packets) / span, 1),
             "bytes": eng.get("capture.bytes", 0), "flows_active": eng.get("flows.active", 0),
             "flows": eng.get("flows.created", 0), "observations": eng.get("observations", 0),
             "kernel_received": cap.get("received", 0), "kernel_dropped": cap.get("dropped", 0),
             "interface_dropped": cap.get("ifdropped", 0),
             "skipped": sum(v for k, v in eng.items() if k.startswith("capture.") and "skip" in k),
             "rss_bytes": rss_bytes()}
        limits = getattr(getattr(self.pipeline, "settings", None), "limits", None)
        if limits is not None:          # the memory budget: memcap, tables against their caps, evictions
            from otwatch.parsers.budget import usage

            d.update(usage(eng, limits))
        if self.extra_stats is not None:
            d.update(self.extra_stats())
        return d

    def _beat(self) -> None:
        st = self.stats()
        self.beats += 1
        self._last_packets = st["packets"]
        self._last_beat = time.monotonic()
        log.info("stats: %s", " ".join(f"{k}={v}" for k, v in st.items()))
        for fn in self.on_heartbeat:
            try:
                fn(st)
            except Exception as exc:   # noqa: BLE001 - a heartbeat sink must not stop the capture
                log.warning("heartbeat not recorded: %s", exc)

    def run(self) -> dict:
        cap = self.capture
        pipe = self.pipeline
        buf = bytearray(BUF_BYTES)
        half = BUF_BYTES // 2
        end = cap.header(buf)
        last_feed = time.monotonic()
        while not self._stop:
            end, _n = cap.dispatch(buf, end)
            now = time.monotonic()
            if end >= half or now - last_feed >= FEED_EVERY:
                used = pipe.feed_chunk(buf, end)
                rest = end - used
                if rest:
                    buf[0:rest] = buf[used:end]
                end = rest
                last_feed = now
            if self._reload:
                self._reload = False
                if self.on_reload is not None:
                    self.on_reload()
            if now - self._last_beat >= self.heartbeat:
                self._beat()
        if end:
            pipe.feed_chunk(buf, end)
        final = self.stats()
        pipe.finish()
        log.info("stopped: %s packets, %s dropped by the kernel", final["packets"], final["kernel_dropped"])
        return final
