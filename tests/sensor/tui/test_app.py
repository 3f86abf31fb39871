"""The app's tick (sensor/tui/app.py): a live model's observations applied in slices, keys answered between."""
from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import time

from textual import events

from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui import model as M
from otwatch.sensor.tui.model import Changes

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


async def test_a_key_typed_while_a_tick_applies_is_answered_before_the_ticks_next_slice(demo_model, monkeypatch):
    """A tick of a live model applies its observations a slice (``model.APPLY_SLICE_S``) at a time, each slice
    scheduled through the event loop: a key that arrives while a slice runs is answered while the tick still
    has slices to apply, not after the whole tick's budget (Textual hands a key from the app to the focused
    widget and back, a few hops, so it may come after the next slice or two; the order of events is
    checked, not a time)."""
    import otwatch.sensor.tui.app as A

    monkeypatch.setattr(A, "TICK_BUDGET_S", 60.0)          # all eight slices in one tick, however loaded the machine
    m = demo_model()
    app = OtwatchApp(m, tick=3600.0, start_feed=False)     # ticks driven by hand below
    log: list = []
    slices = {"n": 0}

    def tick(budget: float = 1.0) -> Changes:
        slices["n"] += 1
        log.append(("slice", budget))
        if slices["n"] == 1:
            app.post_message(events.Key("2", "2"))           # typed while the first slice runs
        time.sleep(0.002)
        return Changes()

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        m.tick = tick
        m.more = lambda: slices["n"] < 8                        # eight slices of work waiting
        show = app.action_show
        app.action_show = lambda key: (log.append(("key", key)), show(key))[1]
        app.tick()
        for _ in range(200):
            if not m.more() and not app._applying:
                break
            await pilot.pause(0.01)
        await pilot.pause()
        assert app.current == "assets"
        kinds = [e[0] for e in log]
        assert kinds.count("slice") == 8 and kinds.count("key") == 1
        assert kinds.index("key") < 7                      # answered while the tick still had slices to apply
        assert all(b <= M.APPLY_SLICE_S for kind, b in log if kind == "slice")


async def test_a_tick_whose_next_slice_was_lost_is_restarted_by_the_next_tick(demo_model, monkeypatch):
    """A tick's hop to its next slice that never arrives must not stop the replay for good: on the loaded VM
    the bench found the app with ``_applying`` set, a batch carried over and the feed's queue full, nothing
    applied any more (the hop was a Textual one-shot ``set_timer``; now an asyncio timer, and a tick whose
    next slice has not run for ``SLICE_LOST_S`` starts afresh).  The hop is made to vanish here."""
    import otwatch.sensor.tui.app as A

    monkeypatch.setattr(A, "TICK_BUDGET_S", 60.0)
    monkeypatch.setattr(A, "SLICE_LOST_S", 0.05, raising=False)
    m = demo_model()
    app = OtwatchApp(m, tick=3600.0, start_feed=False)
    slices = {"n": 0}

    def tick(budget: float = 1.0) -> Changes:
        slices["n"] += 1
        return Changes()

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        m.tick = tick
        m.more = lambda: slices["n"] < 6
        real = app.call_later
        lost = {"n": 0}

        def call_later(cb, *a, **kw):
            if getattr(cb, "__name__", "") == "_apply_slice" and not lost["n"]:
                lost["n"] += 1
                return True                                  # the first hop vanishes
            return real(cb, *a, **kw)

        app.call_later = call_later
        app.tick()
        await pilot.pause(0.1)
        assert slices["n"] == 1 and app._applying and lost["n"] == 1
        app.tick()                                           # the next tick, after SLICE_LOST_S
        for _ in range(300):
            if not m.more() and not app._applying:
                break
            await pilot.pause(0.01)
        assert slices["n"] == 6 and not app._applying
