"""The replay feed's worker thread (sensor/tui/feed.py)."""
from __future__ import annotations

import importlib.util
import pathlib
import time

from otwatch.sensor.tui.feed import ReplayFeed

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


def test_stopping_a_replay_midway_raises_nothing_in_its_thread(monkeypatch):
    """q during a replay stops the feed: the worker thread ends quietly (no 'Exception in thread'
    traceback on the terminal after the TUI has closed)."""
    import threading

    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    feed = ReplayFeed(str(H.DEMO), 1.0)          # packet time: still running when stopped
    feed.start()
    for _ in range(200):
        if feed.poll() is not None:
            break
        time.sleep(0.02)
    assert not feed.done()
    feed.stop()
    assert feed.thread is not None and not feed.thread.is_alive() and feed.done()
    assert seen == []


class _PerKey:
    """A consumer without ``observe_aggregates``: the pipeline gives everyone the ``Aggregate``s one by one."""

    def observe(self, obs) -> None:
        pass


def _per_key_reference():
    """The demo capture through the pipeline on the per-key path: the Overview's counts and the inventory's
    peer rows as they were before the TUI took aggregates in bulk."""
    from otwatch.sensor.inventory.store import Inventory, connect
    from otwatch.sensor.pipeline import Pipeline, Settings
    from otwatch.sensor.tui.feed import INTERVAL_S
    from otwatch.sensor.tui.model import Stats, Tally

    stats, inv = Stats(), Inventory(connect(":memory:"))
    p = Pipeline([inv, Tally(stats), _PerKey()], Settings(interval=INTERVAL_S))
    p.run_file(str(H.DEMO))
    p.finish()
    return stats, inv


def _peers(inv) -> dict:
    return {(a.id, k): (r.get("messages"), r.get("ops"), r.get("first_seen"), r.get("last_seen"))
            for a in inv.assets.values() for k, r in a.t.get("peers", {}).items()}


async def test_replay_hands_aggregates_over_in_bulk_with_the_same_counts(demo_model):
    """The TUI's feed takes a link's aggregates whole (``observe_aggregates``), so the pipeline stays on its
    bulk path and the UI thread gives each consumer the ``LinkAggregates`` in one call; the Overview's message
    counts (per protocol, total) and the inventory's peer rows are what the per-key path gives."""
    from otwatch.sensor.tui.app import OtwatchApp

    ref_stats, ref_inv = _per_key_reference()
    m = demo_model()
    bulk_calls = []
    take = m.inventory.observe_aggregates
    m.inventory.observe_aggregates = lambda b: (bulk_calls.append(len(b.rows)), take(b))[1]
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        assert m.finished and not m.error
        assert bulk_calls and sum(bulk_calls) > len(bulk_calls)     # whole links, not one aggregate at a time
        assert ref_stats.messages > 0
        assert m.stats.messages == ref_stats.messages
        assert m.stats.by_protocol == ref_stats.by_protocol
        assert _peers(m.inventory) == _peers(ref_inv)
        await pilot.pause(0.3)
        assert f"{ref_stats.messages:,} messages" in H.screen_text(app)
