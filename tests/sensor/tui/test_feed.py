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
