"""The TUI's collector policy (sensor/tui/gcpolicy.py): collections between ticks, the process's setting back on exit."""
from __future__ import annotations

import gc
import importlib.util
import pathlib

import pytest

from otwatch.sensor.tui import gcpolicy
from otwatch.sensor.tui.app import OtwatchApp

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


@pytest.fixture
def gc_setting():
    """A process setting of our own (not the default, not tune_gc's), put back after the test."""
    saved = (gc.isenabled(), gc.get_threshold())
    gc.enable()
    gc.set_threshold(1234, 11, 12)
    yield (True, (1234, 11, 12))
    gc.set_threshold(*saved[1])
    (gc.enable if saved[0] else gc.disable)()


async def test_the_replay_runs_without_automatic_collection_and_the_process_setting_is_back_on_exit(
        demo_model, gc_setting, monkeypatch):
    """While the app runs the collector is off and collects at the end of ticks (the feed's thread set
    ``tune_gc``'s thresholds meanwhile); on exit the process has its own setting again, nothing left frozen."""
    monkeypatch.setattr(gcpolicy, "YOUNG", 1)              # every tick's end collects (the demo plant is small)
    monkeypatch.setattr(gcpolicy, "MIDDLE_EVERY", 2)
    m = demo_model()
    app = OtwatchApp(m)
    enabled_while = []
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        await pilot.press("2")
        await pilot.pause(0.6)
        enabled_while.append(gc.isenabled())
        counted = list(app.gc_policy.collections)
        assert app.gc_policy.thaws >= 1                     # the full collection when the replay ended
    assert enabled_while == [False]
    assert counted[0] >= 1 and counted[1] >= 1, counted
    assert (gc.isenabled(), gc.get_threshold()) == gc_setting
    assert gc.get_freeze_count() == 0


def test_at_rest_waits_while_input_is_queued_unless_too_much_is_waiting(gc_setting, monkeypatch):
    """Enough allocated: a tick's end collects; with a key waiting it does not (until ``YOUNG_HARD``)."""
    monkeypatch.setattr(gcpolicy, "YOUNG", 50)
    monkeypatch.setattr(gcpolicy, "YOUNG_HARD", 5000)
    p = gcpolicy.GcPolicy()
    p.install()
    try:
        assert not gc.isenabled()
        junk = [[i] for i in range(200)]                   # 200 young containers
        p.at_rest(busy=True)
        assert p.collections == [0, 0]
        p.at_rest(busy=False)
        assert p.collections == [1, 0] and gc.get_count()[0] < 50
        junk += [[i] for i in range(6000)]
        p.at_rest(busy=True)                               # too much waiting: collected anyway
        assert p.collections == [2, 0]
        del junk
    finally:
        p.uninstall()
    assert (gc.isenabled(), gc.get_threshold()) == gc_setting
    assert gc.get_freeze_count() == 0


def test_the_collector_policy_thaws_and_collects_frozen_garbage(gc_setting, monkeypatch):
    """What was frozen and died in a cycle is freed by the next thaw (memory stays bounded)."""
    import weakref

    class Node:
        pass

    monkeypatch.setattr(gcpolicy, "YOUNG", 1)
    monkeypatch.setattr(gcpolicy, "MIDDLE_EVERY", 1)
    now = {"t": 0.0}
    p = gcpolicy.GcPolicy(clock=lambda: now["t"])
    p.install()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        p.at_rest()                                        # a middle collection, then its survivors frozen
        assert p.collections[1] == 1 and gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert ref() is not None                           # frozen: out of the collector's view
        now["t"] = gcpolicy.THAW_S
        p.at_rest()
        assert p.thaws == 1 and ref() is None
    finally:
        p.uninstall()
    assert gc.get_freeze_count() == 0
