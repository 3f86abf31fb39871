#!/usr/bin/env python3
"""Screenshots of every TUI screen from the demo capture, for docs/tui.md and the README.

    python docs/tui/make_screenshots.py          # writes docs/tui/<screen>.svg and, with cairosvg, .png

The app replays pcaps/demo-plant.pcap at max speed with rules/demo-plant.yaml
(Textual's pilot, 100×30), then each screen is saved with ``save_screenshot``
(SVG).  Wall-clock numbers (rates, memory) are fixed so re-running gives the
same pictures.
"""
from __future__ import annotations

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZE = (100, 30)
VIEWS = [("overview", []), ("assets", ["2"]), ("asset-detail", ["2", "enter"]), ("comms", ["3"]),
         ("comms-matrix", ["3", "v"]), ("alerts", ["4"]), ("alert-detail", ["4", "enter"]), ("policy", ["5"]),
         ("help", ["2", "question_mark"])]


async def shoot() -> list[str]:
    from otwatch.sensor.tui.app import OtwatchApp
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import LiveModel

    out = []
    for name, keys in VIEWS:
        os.chdir(ROOT)      # the capture named as from the checkout: no absolute path in the pictures
        m = LiveModel(ReplayFeed(os.path.join("pcaps", "demo-plant.pcap"), 0.0),
                      os.path.join(ROOT, "rules", "demo-plant.yaml"), source="pcaps/demo-plant.pcap")
        app = OtwatchApp(m)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(600):
                await pilot.pause(0.05)
                if m.finished:
                    break
            s = m.stats
            s.packet_rate.clear()
            s.message_rate.clear()
            s.packet_rate.extend([0, 40, 120, 118, 121, 119, 122, 80, 0])
            s.message_rate.extend([0, 30, 90, 95, 92, 94, 90, 60, 0])
            s.rss_bytes = 64_000_000
            app.refresh_all()
            for k in keys:
                await pilot.press(k)
                await pilot.pause(0.1)
            await pilot.pause(0.3)
            path = app.save_screenshot(f"{name}.svg", HERE)
            out.append(path)
    return out


def main() -> int:
    paths = asyncio.run(shoot())
    try:
        import cairosvg
    except ImportError:
        print("cairosvg not installed: SVG only", file=sys.stderr)
        cairosvg = None
    for p in paths:
        if cairosvg is not None:
            cairosvg.svg2png(url=p, write_to=p[:-4] + ".png")
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
