"""The Overview's Memory tile: resident memory against the memcap, the engine's tables against their caps, evictions.

Replaying, the tile is fed by the pipeline's own counters (``parsers.budget.usage``
over ``Pipeline.stats()``); attached to a database, by the sensor's heartbeat
(``SensorLoop.stats()`` carries the same keys).  The figures are compared with
an independent run of the pipeline over the same capture with the same limits.
The resident memory (wall-clock dependent) is set by the test.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import time

from otwatch.parsers import budget
from otwatch.sensor.pipeline import Pipeline, Settings
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.feed import ReplayFeed
from otwatch.sensor.tui.model import DbModel, LiveModel

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

MIB = budget.MIB
TINY = dataclasses.replace(budget.limits_for(128 * MIB), max_flows=6, max_hosts=20, max_links=8)
"""A 128 MiB budget with tables far too small for the demo plant: flows and links are evicted."""


def engine_run(limits) -> dict:
    """The pipeline over the demo plant with *limits*, outside the TUI: its counters at the end."""
    p = Pipeline([], Settings(interval=1.0, limits=limits))
    p.run_file(str(H.DEMO))
    p.finish()
    return p.stats()


def tile(app) -> str:
    return app.query_one("#t-memory").render().plain


def expected_lines(st: dict, limits, rss: int) -> list[str]:
    ev = {k: sum(st.get(c, 0) for c in budget.EVICTIONS[k]) for k in ("flows", "hosts", "links")}
    total = sum(ev.values())
    lines = [f"{rss // MIB} of {limits.memcap // MIB} MiB memcap",
             f"flows {st['flows.active']:,} of {limits.max_flows:,}",
             f"hosts {st['hosts.active']:,} of {limits.max_hosts:,}",
             f"links {st['links.active']:,} of {limits.max_links:,}"]
    if total:
        lines.append(f"evicted {total:,} (" + " ".join(f"{k[0]} {v:,}" for k, v in ev.items() if v) + ")")
    else:
        lines.append("evicted 0")
    return lines


async def test_replay_with_a_small_budget_shows_the_tables_at_their_caps_and_the_evictions(monkeypatch):
    monkeypatch.chdir(H.ROOT)
    st = engine_run(TINY)
    evicted = sum(st.get(c, 0) for names in budget.EVICTIONS.values() for c in names)
    assert evicted > 10 and st["links.active"] == TINY.max_links        # the demo plant overflows these caps
    m = LiveModel(ReplayFeed(H.DEMO_REL, 0.0, limits=TINY), str(H.POLICY), source=H.DEMO_REL)
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        m.stats.rss_bytes = 96 * MIB
        app.refresh_all()
        await pilot.pause(0.1)
        text = tile(app)
        lines = [ln.strip() for ln in text.splitlines()]
        for want in expected_lines(st, TINY, 96 * MIB):
            assert want in lines, (want, text)
        assert re.search(r"^█{9}··· +75%$", lines[1]), lines[1]                 # 96 of 128 MiB
        shown = H.screen_text(app)
        assert "Memory" in shown and f"evicted {evicted:,}" in shown and "links 8 of 8" in shown
        # over the memcap: the bar is full and red
        m.stats.rss_bytes = 200 * MIB
        app.refresh_all()
        await pilot.pause(0.1)
        r = app.query_one("#t-memory").render()
        assert "200 of 128 MiB memcap" in r.plain and "████████████ 156%" in r.plain
        assert any("red" in str(sp.style) for sp in r.spans if r.plain[sp.start:sp.end].startswith("████"))
        # the tile is reached with the arrows (three a row) and opens the pairs
        app.query_one("#t-traffic").focus()
        await pilot.press("down", "right", "right")
        assert app.focused is app.query_one("#t-memory")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.current == "comms"


async def test_default_budget_on_the_demo_plant_evicts_nothing(demo_model):
    st = engine_run(budget.DEFAULT_BUDGET_LIMITS)
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        H.freeze(m)
        app.refresh_all()
        await pilot.pause(0.1)
        lines = [ln.strip() for ln in tile(app).splitlines()]
        assert lines[:2] == ["61 of 512 MiB memcap", "█···········  12%"]
        assert lines[2:] == expected_lines(st, budget.DEFAULT_BUDGET_LIMITS, 64_000_000)[1:]
        assert "evicted 0" in lines


class _Capture:
    def stats(self) -> dict:
        return {"received": 5315, "dropped": 0}


async def test_attached_the_tile_shows_the_sensors_heartbeat(demo_db, tmp_path):
    """A sensor's heartbeat (SensorLoop.stats: what `otwatch sensor` appends to the outbox) carries the budget."""
    import shutil

    from otwatch.sensor.live.loop import SensorLoop
    from otwatch.sensor.sinks.outbox import Outbox

    path = tmp_path / "live.db"
    shutil.copy(demo_db, path)
    m = DbModel(str(path))
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert [ln.strip() for ln in tile(app).splitlines()] == ["memory -", "tables -"]
        pipe = Pipeline([], Settings(interval=1.0, limits=TINY))
        pipe.run_file(str(H.DEMO))
        pipe.finish()
        hb = SensorLoop(_Capture(), pipe, "iface:vs").stats()
        assert {k: hb[k] for k in budget.USAGE_KEYS} == budget.usage(pipe.stats(), TINY)
        hb["rss_bytes"] = 64 * MIB
        Outbox(str(path)).append("heartbeat", "hb:test:1", "info", time.time(), {"message": "alive", **hb})
        for _ in range(100):
            await pilot.pause(0.1)
            if "memcap" in tile(app):
                break
        lines = [ln.strip() for ln in tile(app).splitlines()]
        assert lines[0] == "64 of 128 MiB memcap"
        for want in expected_lines(pipe.stats(), TINY, 64 * MIB)[1:]:
            assert want in lines, (want, lines)


def test_usage_names_every_budget_counter_of_the_engine():
    from otwatch.ext import engine

    named = {c for names in (*budget.EVICTIONS.values(), *budget.OVERFLOWS.values()) for c in names}
    assert named == set(engine.BUDGET_COUNTERS)


def test_memcap_option_errors_are_one_line():
    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    for args, what in ((["--memcap", "1M", str(H.DEMO)], "below the minimum"),
                       (["--memcap", "lots", str(H.DEMO)], "not a size"),
                       (["--memcap", "256M", "--db", str(H.DEMO)], "not to --db")):
        r = subprocess.run([otwatch, "tui", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and what in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

