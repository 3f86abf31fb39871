"""The baseline in the TUI: learning curve, entries, and accepting a departure into the baseline.

A baseline is learned (``otwatch baseline learn``) from the normal part of
the attack-scenario capture (real peers, pcaps/make_attack_scenarios.py); the
TUI replays the whole capture with ``--baseline``: the detector raises the
attacks as ``baseline.*`` alerts; ``b`` shows the learning curve and every
entry; ``L`` on the wildcard subscription accepts it: the entry is in the
baseline file afterwards (sensor/baseline/accept.py), the alert is closed as
accepted, and the Baseline screen lists one entry more.  On a database
(``--db``), accepting also closes the stored alert (alerts store).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner
from support.attack_capture import CAPTURE, normal_part

from otwatch.sensor.baseline.diff import entries
from otwatch.sensor.baseline.store import load_baseline
from otwatch.sensor.cli import cli
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.baselinescreen import BaselineScreen
from otwatch.sensor.tui.feed import ReplayFeed
from otwatch.sensor.tui.model import DbModel, LiveModel

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

RULE = "baseline.wildcard_subscription"
ENTRY = "pair 10.40.0.66>10.40.0.50 mqtt/1883 subscribe #"


@pytest.fixture
def learned(tmp_path, monkeypatch):
    path = tmp_path / "baseline.yaml"
    monkeypatch.setenv("OTWATCH_BASELINE", str(path))
    monkeypatch.setenv("OTWATCH_DB", str(tmp_path / "inventory.db"))
    r = CliRunner().invoke(cli, ["baseline", "learn", str(normal_part(tmp_path / "normal.pcap"))])
    assert r.exit_code == 0, r.output
    return path


def _body(app) -> str:
    return app.screen.query_one("#baseline-head").render().plain


async def test_learning_curve_entries_and_accept_while_replaying(learned):
    b0 = load_baseline(str(learned))
    assert ENTRY not in entries(b0)
    m = LiveModel(ReplayFeed(str(CAPTURE), 0.0), None, source=str(CAPTURE), baseline_path=str(learned))
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 30)) as pilot:
        await H.wait_done(pilot, m)
        rules = {a.rule for a in m.alerts.values()}
        assert RULE in rules and "auth.mqtt_brute_force" in rules     # baseline.mqtt_brute_force folded into it
        # the Baseline screen: state, the curve, every entry
        await pilot.press("b")
        await pilot.pause(0.2)
        assert isinstance(app.screen, BaselineScreen)
        head = _body(app)
        assert f"{len(b0.assets):,} assets, {len(b0.pairs):,} pairs" in head
        assert "new entries per interval: " in head and f"first {b0.learning.curve[0]:,}" in head
        pane = app.screen.query_one("#baseline-entries")
        n0 = pane.table.row_count
        assert n0 == len(entries(b0)) > 10
        await pilot.press("slash", *"10.40.0.50", "enter")
        await pilot.pause(0.1)
        assert 0 < pane.table.row_count < n0 and all("10.40.0.50" in k for k in pane.table.cells)
        await pilot.press("escape", "escape")
        # accept the wildcard subscription from the alert list
        await pilot.press("4", "slash", *f"rule:{RULE}", "enter")
        await pilot.pause(0.1)
        alerts = app.pane("alerts")
        assert alerts.table.row_count == 1
        aid = alerts.table.selected_key()
        await pilot.press("L")
        await pilot.pause(0.2)
        assert (m.alerts[aid].status, m.alerts[aid].close_reason) == ("closed", "accepted")
        assert alerts.table.cells[aid][2].plain == "closed"                     # the row says so
        b1 = load_baseline(str(learned))
        assert ENTRY in entries(b1) and aid not in b1.pending
        assert ENTRY in entries(m.collector.detector.b)          # the running detector knows it too
        await pilot.press("b")
        await pilot.pause(0.2)
        assert app.screen.query_one("#baseline-entries").table.row_count >= n0 + 1
        # a finding that is not a baseline departure cannot be accepted
        await pilot.press("escape", "4", "escape")
        await pilot.press("slash", *"rule:policy", "enter")
        other = next(a for a in m.alerts.values() if not a.rule.startswith("baseline."))
        assert m.accept(other.id).startswith("cannot be learned")


async def test_accept_on_a_database_closes_the_stored_alert(learned, tmp_path):
    db = tmp_path / "inventory.db"
    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    subprocess.run([otwatch, "analyze", str(CAPTURE), "-q", "--baseline", str(learned), "--db", str(db)],
                   check=True, capture_output=True, env=dict(os.environ, OTWATCH_DB=str(db),
                                                             OTWATCH_BASELINE=str(learned)))
    m = DbModel(str(db), baseline_path=str(learned))
    aid = next(a.id for a in m.alerts.values() if a.rule == RULE)
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4", "slash", *f"rule:{RULE}", "enter")
        await pilot.pause(0.1)
        await pilot.press("enter", "L")                    # from the alert's detail
        await pilot.pause(0.2)
        assert "closed, accepted" in app.screen.query_one("#detail-body").render().plain
    conn = sqlite3.connect(db)
    status, reason, note = conn.execute("SELECT status, close_reason, status_note FROM alerts WHERE id = ?",
                                        (aid,)).fetchone()
    conn.close()
    assert (status, reason) == ("closed", "accepted") and ENTRY in note
    assert ENTRY in entries(load_baseline(str(learned)))


def test_read_only_refuses_accept(learned, tmp_path):
    m = DbModel.__new__(DbModel)
    m.read_only = True
    assert m.accept("x") == "read-only"
