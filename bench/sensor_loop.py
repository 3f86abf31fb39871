#!/usr/bin/env python3
"""The live sensor's own ceiling: its capture → engine → consumers loop fed from memory.

    python bench/sensor_loop.py --capture bench/out/mixed-1600k.pcap [--profile out.prof]

``bench/sensor_rate.py`` measures the whole path (tcpreplay → veth → kernel →
libpcap ring → sensor), but on this 2-core machine tcpreplay and the kernel's
veth/packet-socket work share one core and cannot push more than ~100 k
packets/s.  This script takes the kernel and libpcap out: a stand-in capture
(``MemoryCapture``) hands the sensor's loop the capture's records a
"ring block" (``BLOCK_BYTES``, libpcap's TPACKET_V3 block for a 64 MB buffer)
at a time, exactly as ``ext/capture.pyx``'s ``dispatch`` writes them (pcap
records, nanosecond header, appended at ``buf[start:]``).  Everything else is
``otwatch sensor`` itself (``live.cli.build_sensor``: the engine, inventory
into a new database, alerts, asset changes, outbox, heartbeats).  The figure is
packets per second of the sensor process's CPU time (user + system), so other
load on the machine does not count against it.  When the capture ends the
stand-in sends SIGTERM to its own process: the sensor's clean stop (flush,
final heartbeat) is timed too.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import struct
import sys
import tempfile
import time

BLOCK_BYTES = 1 << 20
"""Bytes of records per dispatch: libpcap's TPACKET_V3 block size on Linux."""


class MemoryCapture:
    """The capture interface of ext/capture.pyx over a pcap file read into memory."""

    linktype = 1
    warning = "memory"

    def __init__(self, path: str):
        with open(path, "rb") as fh:
            data = fh.read()
        magic = struct.unpack_from("<I", data)[0]
        assert magic in (0xA1B23C4D, 0xA1B2C3D4), "classic little-endian pcap expected"
        self.nano = magic == 0xA1B23C4D
        self.snaplen = 65535
        self.linktype = struct.unpack_from("<I", data, 20)[0]
        self.data = memoryview(data)
        self.blocks = self._blocks()
        self.i = 0
        self.packets = 0
        self.dispatches = 0
        self.done = False

    def header(self, buf) -> int:
        buf[0:24] = struct.pack("<IHHiIII", 0xA1B23C4D if self.nano else 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen,
                                self.linktype)
        return 24

    def _blocks(self) -> list[tuple[int, int, int]]:
        """(first byte, end, packets) of each block: cut before the timing starts, so that the
        stand-in's own walk over the records is not counted as the sensor's work."""
        d, p, end = self.data, 24, len(self.data)
        out = []
        while p + 16 <= end:
            q, n = p, 0
            while q + 16 <= end:
                cap = struct.unpack_from("<I", d, q + 8)[0]
                if q + 16 + cap - p > BLOCK_BYTES:
                    break
                q += 16 + cap
                n += 1
            out.append((p, q, n))
            p = q
        return out

    def dispatch(self, buf, start: int):
        if self.i >= len(self.blocks):
            if not self.done:
                self.done = True
                os.kill(os.getpid(), signal.SIGTERM)
            return start, 0
        p, q, n = self.blocks[self.i]
        if len(buf) - start < q - p:
            return start, 0                  # the loop hands the buffer to the engine first
        self.i += 1
        buf[start:start + (q - p)] = self.data[p:q]
        self.packets += n
        self.dispatches += 1
        return start + (q - p), n

    def stats(self) -> dict:
        return {"received": self.packets, "dropped": 0, "ifdropped": 0}

    def fileno(self) -> int:
        return -1

    def breakloop(self) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                                      "mixed-1600k.pcap"))
    ap.add_argument("--profile", default=None, help="write a cProfile of the run here")
    ap.add_argument("--interval", type=float, default=60.0)
    a = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from otwatch.sensor.live.cli import build_sensor
    from otwatch.sensor.live.config import SensorConfig

    cap = MemoryCapture(a.capture)
    work = tempfile.mkdtemp(prefix="otwatch-loop-")
    cfg = SensorConfig(interface="mem0", db=os.path.join(work, "s.db"), heartbeat=3600, interval=a.interval)
    run = build_sensor(cfg, cap, [])
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
        prof.dump_stats(a.profile)
    else:
        run()
    w1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"{cap.packets} packets in {cap.dispatches} dispatches: {cpu:.2f} s CPU ({w1 - w0:.2f} s wall), "
          f"{cap.packets / cpu:,.0f} packets/s of CPU", file=sys.stderr)


if __name__ == "__main__":
    main()
