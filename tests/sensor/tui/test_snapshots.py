"""Layout snapshots (pytest-textual-snapshot) of every screen at 80×24 and 160×48, from the demo plant.

Wall-clock numbers (rates, memory) are frozen after the replay; everything
else on screen comes from the capture.  Update with ``pytest --snapshot-update``
only after reading the HTML diff report.
"""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from otwatch.sensor.tui.app import OtwatchApp

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

VIEWS = {
    "overview": [],
    "assets": ["2"],
    "asset_detail": ["2", "down", "enter"],
    "comms": ["3"],
    "matrix": ["3", "v"],
    "alerts": ["4"],
    "alert_detail": ["4", "enter"],
    "policy": ["5"],
    "help": ["2", "question_mark"],
}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_snapshot(snap_compare, demo_model, view, size):
    m = demo_model()
    app = OtwatchApp(m)

    async def run_before(pilot):
        await H.wait_done(pilot, m)
        H.freeze(m)
        app.refresh_all()
        for key in VIEWS[view]:
            await pilot.press(key)
            await pilot.pause(0.1)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("view", ["overview", "alerts"])
def test_snapshot_16_colours_read_only(snap_compare, demo_model, view):
    """The textual-ansi theme (the terminal's own 16 colours) in read-only mode (RO, no acknowledge)."""
    m = demo_model()
    m.read_only = True
    app = OtwatchApp(m, ansi=True)

    async def run_before(pilot):
        await H.wait_done(pilot, m)
        H.freeze(m)
        app.refresh_all()
        for key in VIEWS[view]:
            await pilot.press(key)
            await pilot.pause(0.1)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
