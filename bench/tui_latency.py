#!/usr/bin/env python3
"""TUI responsiveness: key-press latency with 10,000 assets during a max-speed replay (issue 16).

    python bench/tui_latency.py [--packets 20000] [--presses 40]

Builds ``bench/out/syn-flood-<N>.pcap`` with bench/make_hostile.py (SYNs from
distinct sources behind the router's MAC: one new asset per SYN, so 20,000
packets give ~10,000 assets), runs the TUI headless (Textual's pilot, 80×24)
replaying it at max speed, and while the replay runs presses keys in turn:
``2`` (Assets, the big table), ``3``, ``4``, ``1`` and ``/`` + a filter + Enter
on Assets.  The latency of a key is the wall time from sending it until the app
is idle again (``pilot.press`` + ``pilot.pause()``: the key handled and the
screen refreshed).  Prints p50/p95/max per key and the replay time; nothing is
asserted (timings belong here, not in tests).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def capture(packets: int) -> str:
    out = os.path.join(HERE, "out", f"syn-flood-{packets // 1000}k.pcap")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_hostile.py"), "syn-flood", "--packets", str(packets),
                        "--out", out, "-q"], check=True)
    return out


async def run(path: str, presses: int) -> dict:
    from otwatch.sensor.tui.app import OtwatchApp
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import LiveModel

    m = LiveModel(ReplayFeed(path, 0.0), None, source=path)
    app = OtwatchApp(m)
    lat: dict = {}
    t_start = time.perf_counter()
    t_done = None
    async with app.run_test(size=(80, 24)) as pilot:
        seq = ["2", "3", "4", "1"]
        i = 0
        while i < presses or t_done is None:
            if t_done is None and m.finished:
                t_done = time.perf_counter() - t_start
            if i >= presses:
                await pilot.pause(0.1)
                if time.perf_counter() - t_start > 600:
                    break
                continue
            key = seq[i % len(seq)]
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            lat.setdefault(key, []).append(time.perf_counter() - t0)
            if key == "2" and i % 8 == 0:
                t0 = time.perf_counter()
                await pilot.press("slash", *"10.128.1", "enter")
                await pilot.pause()
                lat.setdefault("/10.128.1⏎", []).append(time.perf_counter() - t0)
                await pilot.press("escape")
            i += 1
            await pilot.pause(0.2)
        assets = len(m.assets)
        rows = app.pane("assets").table.row_count
    return {"latency": lat, "replay_s": t_done, "assets": assets, "rows": rows, "observations": m.stats.observations}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=20_000)
    ap.add_argument("--presses", type=int, default=40)
    a = ap.parse_args()
    path = capture(a.packets)
    r = asyncio.run(run(path, a.presses))
    print(f"capture {os.path.basename(path)}: {r['assets']:,} assets ({r['rows']:,} rows), "
          f"{r['observations']:,} observations, replay in the TUI {r['replay_s'] or float('nan'):.1f} s")
    print(f"{'key':<14} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for k, v in r["latency"].items():
        v = sorted(v)
        p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
        print(f"{k:<14} {len(v):>3} {statistics.median(v) * 1e3:>8.0f} {p95 * 1e3:>8.0f} {v[-1] * 1e3:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
