#!/usr/bin/env python3
"""TUI responsiveness at 10,000 assets: key-to-paint latency of scrolling, filtering, sorting, opening (issue 16).

    python bench/tui_latency.py [--assets 10000] [--mode db|replay|both] [--rounds 5] [--size 80x24] [--repeat 3]

The plant is bench/make_big_plant.py's (10,000 hosts: PLCs polled by HMIs,
MQTT sensors, misplaced sensors and a rogue laptop that the policy denies),
written to ``bench/out/big-plant-<N>.pcap`` with its policy.

* ``db``: the capture goes through the real pipeline into a database
  (``otwatch analyze --db … --policy …``: inventory, alerts table), and the TUI
  browses it (``otwatch tui --db``, ``DbModel``).
* ``replay``: the TUI replays at max speed (``ReplayFeed``, ``LiveModel``: the
  pipeline in its worker thread, the UI applying batches) the plant's
  conversations ``--repeat`` times over (``bench/out/big-plant-<N>-x<R>.pcap``:
  the first pass brings the 10,000 assets, the next ones are steady traffic of
  the same hosts).  The keys are pressed once the model holds every asset, while
  the replay is still running (the UI applying observations each tick, the
  pipeline's thread reading ahead until the bounded queue is full); a press that
  ends after the replay finished is not counted (reported as "after"), so every
  figure is a key answered with 10,000 assets held *and* a max-speed replay in
  progress.

The app runs headless under Textual's pilot.  The latency of an action is the
wall time from sending its keys until the app is idle again with the screen
refreshed (``pilot.press`` + ``pilot.pause()``).  Actions: ``2`` (Assets),
``j`` (one row down), ``pagedown``, ``G`` (last row), ``s`` (next sort
column), ``I`` (invert), ``/`` + a word + Enter (filter; also per typed
character), ``escape`` (clear the filter), ``enter`` (open an asset) and
``escape`` (back), ``3`` (Comms), ``4`` (Alerts).  Prints n/p50/p95/max per
action.  Nothing is asserted here (tests/sensor/tui/test_big.py checks what
is shown at this size, without timing).
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
OUT = os.path.join(HERE, "out")
FILTER = "10.30.0.4"
"""A filter that narrows 10,000 assets to eleven (10.30.0.4 and 10.30.0.40-49), typed a character at a time."""


def plant(assets: int, repeat: int = 1) -> tuple[str, str]:
    pcap = os.path.join(OUT, f"big-plant-{assets}.pcap" if repeat == 1 else f"big-plant-{assets}-x{repeat}.pcap")
    pol = os.path.join(OUT, "big-plant.yaml")
    if not os.path.exists(pcap) or not os.path.exists(pol):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_big_plant.py"), "--assets", str(assets),
                        "--out", pcap, "--policy", pol, "--repeat", str(repeat)], check=True)
    return pcap, pol


def database(pcap: str, pol: str) -> str:
    db = pcap[:-5] + ".db"
    if not os.path.exists(db):
        otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
        t0 = time.perf_counter()
        subprocess.run([otwatch, "analyze", pcap, "--db", db, "--policy", pol, "--quiet"], check=False,
                       stdout=subprocess.DEVNULL)
        print(f"otwatch analyze --db: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return db


CPU: dict = {}
"""action -> CPU seconds of this process (UI and, in replay mode, the pipeline's worker thread) per press."""


GATE: dict = {}
"""Replay mode: ``model`` (presses count only while its replay runs) and ``after`` (presses that did not)."""


async def _timed(pilot, lat: dict, name: str, *keys: str) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    await pilot.press(*keys)
    await pilot.pause()
    m = GATE.get("model")
    if m is not None:
        if m.finished:
            GATE["after"] = GATE.get("after", 0) + 1
            return
        if not m.feed.done():
            GATE["reading"] = GATE.get("reading", 0) + 1
    lat.setdefault(name, []).append(time.perf_counter() - t0)
    CPU.setdefault(name, []).append(time.process_time() - c0)


async def _round(app, pilot, lat: dict) -> None:
    await _timed(pilot, lat, "2 assets", "2")
    for _ in range(5):
        await _timed(pilot, lat, "j scroll 1", "j")
    await _timed(pilot, lat, "pagedown", "pagedown")
    await _timed(pilot, lat, "G bottom", "G")
    await _timed(pilot, lat, "g top", "g")
    await _timed(pilot, lat, "s sort", "s")
    await _timed(pilot, lat, "I invert", "I")
    await _timed(pilot, lat, "/ open filter", "slash")
    for ch in FILTER:
        await _timed(pilot, lat, "filter: a char", ch)
    await _timed(pilot, lat, "filter: enter", "enter")
    await _timed(pilot, lat, "enter open", "enter")
    await _timed(pilot, lat, "esc back", "escape")
    await _timed(pilot, lat, "esc clear", "escape")
    await _timed(pilot, lat, "enter open", "enter")
    await _timed(pilot, lat, "esc back", "escape")
    await _timed(pilot, lat, "3 comms", "3")
    await _timed(pilot, lat, "pagedown", "pagedown")
    await _timed(pilot, lat, "4 alerts", "4")
    await _timed(pilot, lat, "j scroll 1", "j")
    await _timed(pilot, lat, "1 overview", "1")


async def run(mode: str, pcap: str, pol: str, rounds: int, size: tuple[int, int], want_assets: int = 0) -> dict:
    from otwatch.sensor.tui.app import OtwatchApp
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import DbModel, LiveModel

    CPU.clear()
    GATE.clear()
    db = database(pcap, pol) if mode == "db" else None
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "db":
        m = DbModel(db, pol)
    else:
        m = LiveModel(ReplayFeed(pcap, 0.0), pol, source=pcap)
    app = OtwatchApp(m)
    lat: dict = {}
    t_done = None
    t_all = None
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        lat["start (first paint)"] = [time.perf_counter() - t0]
        CPU["start (first paint)"] = [time.process_time() - c0]
        if mode == "replay":
            # every asset held first (the first pass of the plant), then keys while the replay runs on
            while len(m.assets) < want_assets and not m.finished and time.perf_counter() - t0 < 900:
                await pilot.pause(0.2)
            t_all = time.perf_counter() - t0
            GATE["model"] = m
        r = 0
        while r < rounds or (mode == "replay" and t_done is None):
            if mode == "replay" and t_done is None and m.finished:
                t_done = time.perf_counter() - t0
            if r < rounds:
                await _round(app, pilot, lat)
                r += 1
            else:
                await pilot.pause(0.2)
                if time.perf_counter() - t0 > 900:
                    break
        info = {"assets": len(m.assets), "rows": app.pane("assets").table.row_count, "alerts": len(m.alerts),
                "pairs": sum(1 for r in m.all_kids("peers") if r.get("direction") == "client"),
                "packets": m.stats.packets, "all_assets_s": t_all, "after": GATE.get("after", 0),
                "reading": GATE.get("reading", 0)}
    return {"latency": lat, "cpu": dict(CPU), "replay_s": t_done, **info}


def report(mode: str, r: dict) -> None:
    extra = f", replay in the TUI {r['replay_s']:.1f} s" if r.get("replay_s") else ""
    if r.get("all_assets_s") is not None:
        n = sum(len(v) for k, v in r["latency"].items() if not k.startswith("start"))
        extra += (f" ({r['packets']:,} packets); every asset held after {r['all_assets_s']:.1f} s, then {n} key"
                  f" presses answered while the replay ran ({r['reading']} of them while the pipeline thread was"
                  f" still reading the capture), {r['after']} after it ended (not counted)")
    print(f"\n{mode}: {r['assets']:,} assets, {r['pairs']:,} pairs, {r['alerts']:,} alerts{extra}")
    print(f"{'action':<20} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8}")
    for k, v in r["latency"].items():
        v = sorted(v)
        p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
        cpu = statistics.median(r["cpu"].get(k) or [0.0])
        print(f"{k:<20} {len(v):>3} {statistics.median(v) * 1e3:>8.0f} {p95 * 1e3:>8.0f} {v[-1] * 1e3:>8.0f}"
              f" {cpu * 1e3:>8.0f}")
    print("(ms of wall time from the key to the app idle with the screen refreshed; cpu: CPU ms of the process)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--mode", choices=("db", "replay", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="80x24")
    ap.add_argument("--repeat", type=int, default=3,
                    help="replay mode: the plant's conversations this many times (keys are pressed after the first)")
    a = ap.parse_args()
    size = tuple(int(x) for x in a.size.split("x"))
    for mode in (("db", "replay") if a.mode == "both" else (a.mode,)):
        pcap, pol = plant(a.assets, a.repeat if mode == "replay" else 1)
        report(mode, asyncio.run(run(mode, pcap, pol, a.rounds, size, a.assets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
