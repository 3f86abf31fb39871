"""The app's tick (sensor/tui/app.py): a live model's observations applied in slices, keys answered between."""
from __future__ import annotations

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
