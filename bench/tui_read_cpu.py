#!/usr/bin/env python3
"""CPU of one full read of the Assets and Comms rows on the UI thread, 10,000 assets held (issue 16).

    python bench/tui_read_cpu.py [--assets 10000] [--reads 3]

The TUI replays bench/tui_latency.py's plant (``--repeat 3`` capture) at max
speed under Textual's pilot until the model holds every asset, then the replay
is stopped and each list is shown and re-read in full ``--reads`` times
(``record`` of every row, the row cache, the sort and the table load): the
process's CPU seconds per read are printed.  Nothing is asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tui_latency import plant  # noqa: E402


async def run(pcap: str, pol: str, assets: int, reads: int) -> None:
    from otwatch.sensor.tui.app import OtwatchApp
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import LiveModel

    m = LiveModel(ReplayFeed(pcap, 0.0), pol, source=pcap)
    app = OtwatchApp(m, tick=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        while len(m.assets) < assets and not m.finished:
            await pilot.pause(0.2)
        m.feed.stop()
        await pilot.pause(0.5)
        for name, key in (("assets", "2"), ("comms", "3")):
            pane = app.pane(name)
            await pilot.press(key)
            while pane.reading:
                await pilot.pause(0.05)
            cpu = []
            for _ in range(reads):
                c0 = time.process_time()
                keys = list(pane.all_keys())
                for k in keys:
                    pane._store(k, pane.record(k))
                pane._relist()
                cpu.append(time.process_time() - c0)
            print(f"{name}: {len(keys):,} rows, CPU s per full read: {' '.join(f'{x:.2f}' for x in cpu)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--reads", type=int, default=3)
    a = ap.parse_args()
    pcap, pol = plant(a.assets, 3)
    asyncio.run(run(pcap, pol, a.assets, a.reads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
