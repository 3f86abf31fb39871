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
``escape`` (back), ``3`` then ``j`` at once (Comms: until shown, until every pair is listed, and
how long the ``j`` typed right after it waited; ``_comms_probe``), ``4`` (Alerts).  Prints n/p50/p95/max per
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


UNTIL = {"mode": "answered"}
"""``answered`` (default): a key counts from its sending until the screen shows its answer (a condition on the
app, polled every 2 ms) and the next screen refresh after it; ``idle``: until ``pilot.press`` + ``pilot.pause()``
return (the app idle: Textual's ``wait_for_idle`` waits for the *process* to use less than 1 ms of CPU in
20 ms, up to 1 s per wait, so during a max-speed replay the pipeline's thread alone keeps it waiting)."""


def _key_event(key: str):
    """The key event a terminal sends for *key* (a key name or a character)."""
    from textual import events

    names = {"slash": "/", "less_than_sign": "<", "greater_than_sign": ">", "enter": "\r", "escape": "\x1b",
             "pagedown": None, "pageup": None}
    char = names[key] if key in names else (key if len(key) == 1 else None)
    return events.Key(key, char)


async def _answered(app, cond, limit: float = 120.0) -> None:
    """Until *cond()* holds, then until the screen after it was refreshed (``call_after_refresh``)."""
    t0 = time.perf_counter()
    while not cond() and time.perf_counter() - t0 < limit:
        await asyncio.sleep(0.002)
    done = asyncio.get_running_loop().create_future()
    app.call_after_refresh(lambda: done.done() or done.set_result(None))
    await asyncio.wait_for(done, limit)


def _gate(lat: dict, name: str, t0: float, c0: float) -> None:
    m = GATE.get("model")
    if m is not None:
        if m.finished:
            GATE["after"] = GATE.get("after", 0) + 1
            return
        if not m.feed.done():
            GATE["reading"] = GATE.get("reading", 0) + 1
    lat.setdefault(name, []).append(time.perf_counter() - t0)
    CPU.setdefault(name, []).append(time.process_time() - c0)


async def _timed(pilot, lat: dict, name: str, *keys: str, cond=None) -> None:
    """Send *keys*; wait until the app answered (*cond*, see ``UNTIL``) or, in ``idle`` mode, went idle."""
    t0, c0 = time.perf_counter(), time.process_time()
    if UNTIL["mode"] == "idle" or cond is None:
        await pilot.press(*keys)
        await pilot.pause()
    else:
        app = pilot.app
        for k in keys:
            app.post_message(_key_event(k))         # as the terminal's driver posts it (no private call)
        await _answered(app, cond)
    _gate(lat, name, t0, c0)


async def _comms_probe(app, pilot, lat: dict) -> None:
    """``3`` then ``j`` at once, as a user types them, without waiting for the app to go idle in between
    (``pilot.press`` waits until every queued callback ran, so it cannot see a key answered between the
    slices of a read): ``3 comms: shown`` from ``3`` until Comms is the screen (its first slice read),
    ``3 → j answered`` from ``j`` until the cursor moved, ``3 comms: all read`` from ``3`` until every pair is
    listed (what ``pilot.press("3")`` + ``pause()`` measured, the row ``3 comms`` of earlier runs)."""
    pane = app.pane("comms")
    m = GATE.get("model")
    t0, c0 = time.perf_counter(), time.process_time()
    app.post_message(_key_event("3"))
    while app.current != "comms" and time.perf_counter() - t0 < 120:
        await asyncio.sleep(0.002)
    shown = time.perf_counter() - t0
    row = pane.table.cursor_row
    t1 = time.perf_counter()
    app.post_message(_key_event("j"))
    while pane.table.cursor_row == row and pane.table.row_count > 1 and time.perf_counter() - t1 < 120:
        await asyncio.sleep(0.002)
    j = time.perf_counter() - t1
    reading = getattr(pane, "reading", False)
    while getattr(pane, "reading", False):
        await pilot.pause(0.02)
    await pilot.pause()
    done, cpu = time.perf_counter() - t0, time.process_time() - c0
    if m is not None and m.finished:
        GATE["after"] = GATE.get("after", 0) + 1
        return
    lat.setdefault("3 comms: shown", []).append(shown)
    lat.setdefault("3 → j answered", []).append(j)
    lat.setdefault("3 comms: all read", []).append(done)
    CPU.setdefault("3 comms: all read", []).append(cpu)
    GATE["j_while_reading"] = GATE.get("j_while_reading", 0) + bool(reading)


async def _round(app, pilot, lat: dict) -> None:
    from otwatch.sensor.tui.assets import AssetDetail

    assets = app.pane("assets")
    t = assets.table

    def table():
        return app.pane(app.current).table

    async def step(name: str, key: str, cond_of) -> None:
        """*cond_of()* is called before the key is sent and returns the answer's condition."""
        await _timed(pilot, lat, name, key, cond=cond_of())

    def moved(d: int):
        """The cursor left its row (a live re-sort may move the row it lands on: its key tells)."""
        tb = table()
        r0, k0 = tb.cursor_row, tb.selected_key()
        return lambda: tb.cursor_row != r0 or tb.selected_key() != k0

    await step("2 assets", "2", lambda: lambda: app.current == "assets" and t.row_count > 0)
    while assets.reading:                   # the keys below act on the whole list (its first show is sliced)
        await pilot.pause(0.02)
    for _ in range(5):
        await step("j scroll 1", "j", lambda: moved(1))
    await step("pagedown", "pagedown", lambda: (lambda r: lambda: t.cursor_row > r)(t.cursor_row))
    await step("G bottom", "G", lambda: lambda: t.cursor_row == t.row_count - 1)
    await step("g top", "g", lambda: lambda: t.cursor_row == 0)
    n = len(assets.COLUMNS)
    await step("s sort", "s", lambda: (lambda c: lambda: assets.sort_col == c)((assets.sort_col + 1) % n))
    await step("I invert", "I", lambda: (lambda r: lambda: assets.sort_reverse == r)(not assets.sort_reverse))
    await step("/ open filter", "slash", lambda: lambda: assets.filter_bar.has_focus)
    typed = ""
    for ch in FILTER:
        typed += ch
        await step("filter: a char", ch, lambda: (lambda v: lambda: assets.filter_text == v)(typed))
    await step("filter: enter", "enter", lambda: lambda: t.has_focus)

    def in_detail() -> bool:
        """The asset's detail is on: a pushed screen (before issue 16's overlay) or shown in the Assets screen."""
        return isinstance(app.screen, AssetDetail) or bool(getattr(assets, "detail_open", False))

    def detail():
        def shown():
            body = app.screen.query("#detail-body") if in_detail() else ()
            return bool(body) and bool(body.first().render().plain)
        return shown

    await step("enter open", "enter", detail)
    await step("esc back", "escape", lambda: lambda: not in_detail())
    await step("esc clear", "escape", lambda: lambda: not assets.filter_text and t.row_count == len(assets.values))
    await step("enter open", "enter", detail)
    await step("esc back", "escape", lambda: lambda: not in_detail())
    await _comms_probe(app, pilot, lat)
    await step("pagedown", "pagedown", lambda: (lambda tb, r: lambda: tb.cursor_row > r)(table(), table().cursor_row))
    await step("4 alerts", "4", lambda: lambda: app.current == "alerts" and app.pane("alerts").table.row_count > 0)
    await step("j scroll 1", "j", lambda: moved(1))
    await step("1 overview", "1", lambda: lambda: app.current == "overview")


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
                "reading": GATE.get("reading", 0), "j_while_reading": GATE.get("j_while_reading", 0),
                "rss_mb": _rss_mb()}
        gcp = getattr(app, "gc_policy", None)
        if gcp is not None:
            info["gc"] = (f"collections at rest young/middle (then frozen) {gcp.collections}, thaws {gcp.thaws},"
                          f" longest {gcp.longest * 1e3:.0f} ms")
    return {"latency": lat, "cpu": dict(CPU), "replay_s": t_done, **info}


def _rss_mb() -> float:
    """This process's resident memory now, MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def report(mode: str, r: dict) -> None:
    extra = f", replay in the TUI {r['replay_s']:.1f} s" if r.get("replay_s") else ""
    if r.get("all_assets_s") is not None:
        n = sum(len(v) for k, v in r["latency"].items() if not k.startswith("start"))
        extra += (f" ({r['packets']:,} packets); every asset held after {r['all_assets_s']:.1f} s, then {n} key"
                  f" presses answered while the replay ran ({r['reading']} of them while the pipeline thread was"
                  f" still reading the capture), {r['after']} after it ended (not counted)")
    if "3 → j answered" in r["latency"]:
        extra += (f"; the j after 3 was answered while Comms was still reading its pairs"
                  f" {r.get('j_while_reading', 0)} of {len(r['latency']['3 → j answered'])} times")
    print(f"\n{mode}: {r['assets']:,} assets, {r['pairs']:,} pairs, {r['alerts']:,} alerts{extra}")
    print(f"RSS at the end {r['rss_mb']:.0f} MB" + (f"; GC: {r['gc']}" if r.get("gc") else ""))
    print(f"{'action':<20} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8}")
    for k, v in r["latency"].items():
        v = sorted(v)
        p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
        cpu = statistics.median(r["cpu"].get(k) or [0.0])
        print(f"{k:<20} {len(v):>3} {statistics.median(v) * 1e3:>8.0f} {p95 * 1e3:>8.0f} {v[-1] * 1e3:>8.0f}"
              f" {cpu * 1e3:>8.0f}")
    until = ("the screen answered it and was refreshed" if UNTIL["mode"] == "answered"
             else "the app idle with the screen refreshed (pilot.press + pause)")
    print(f"(ms of wall time from the key to {until}; cpu: CPU ms of the process)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--mode", choices=("db", "replay", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="80x24")
    ap.add_argument("--until", choices=("answered", "idle"), default="answered",
                    help="a key counts until the screen answered it (default), or until the app is idle (pilot.press)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="replay mode: the plant's conversations this many times (keys are pressed after the first)")
    a = ap.parse_args()
    size = tuple(int(x) for x in a.size.split("x"))
    UNTIL["mode"] = a.until
    for mode in (("db", "replay") if a.mode == "both" else (a.mode,)):
        pcap, pol = plant(a.assets, a.repeat if mode == "replay" else 1)
        report(mode, asyncio.run(run(mode, pcap, pol, a.rounds, size, a.assets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
