"""Every screen and action driven through Textual's pilot on the demo plant capture, asserting what is shown."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from otwatch.sensor.alerts.catalogue import FINDING_ONLY
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.assets import AssetDetail
from otwatch.sensor.tui.alerts import AlertDetail
from otwatch.sensor.tui.help import HelpScreen

_here = pathlib.Path(__file__).with_name("conftest.py")
_spec = importlib.util.spec_from_file_location("tui_conftest", _here)
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


def body(app) -> str:
    """The whole text of a detail screen (it scrolls: more than the 24 lines on show)."""
    r = app.screen.query_one("#detail-body").render()
    return getattr(r, "plain", str(r))


async def _run(app, model, pilot):
    await H.wait_done(pilot, model)


async def test_overview_shows_the_plant_and_tiles_open_their_lists(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        text = H.screen_text(app)
        assert "replay: done" in text
        assert "5,315 packets" in text
        for proto in ("modbus", "mqtt", "opcua"):
            assert proto in text
        assert "total" in text and "12" in text
        assert "HIGH" in text and "CRIT" in text
        assert "decode coverage" in text
        # the alerts tile opens the alert list filtered on the worst severity present
        app.query_one("#t-alerts").focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.current == "alerts"
        pane = app.pane("alerts")
        assert pane.filter_text == "sev:critical"
        assert pane.table.row_count == sum(1 for a in m.alerts.values() if a.severity == "critical") >= 1
        # Esc clears the filter, then goes back to the overview
        await pilot.press("escape")
        assert pane.filter_text == ""
        await pilot.press("escape")
        assert app.current == "overview"
        # the assets tile, with the arrow keys
        app.query_one("#t-traffic").focus()
        await pilot.press("right", "right", "enter")
        await pilot.pause(0.1)
        assert app.current == "assets"


async def test_assets_sort_filter_detail(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("2")
        pane = app.pane("assets")
        assert pane.table.row_count == len(m.assets) == 12
        text = H.screen_text(app)
        assert "Assets 12/12" in text and "plc1" in text and "10.10.0.50" in text
        await pilot.press("slash", *"class:plc", "enter")
        await pilot.pause(0.1)
        assert pane.table.row_count == 2
        assert "Assets 2/12" in H.screen_text(app)
        # sort by the next column and invert: the cursor stays on the same asset
        before = pane.table.selected_key()
        await pilot.press("s", "I")
        await pilot.pause(0.1)
        assert pane.table.selected_key() == before
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, AssetDetail)
        assert "plc" in H.screen_text(app)
        detail = body(app)
        assert "Identity" in detail and "Services" in detail and "Posture findings" in detail
        assert "modbus.no_authentication" in detail
        # `a` in the detail: the alerts of that asset
        await pilot.press("a")
        await pilot.pause(0.1)
        assert app.current == "alerts" and app.pane("alerts").filter_text.startswith("asset:10.10.0.1")
        assert app.pane("alerts").table.row_count >= 1


async def test_filter_line_takes_digits_and_q_as_text(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("2", "slash", *"10.10.0.1q", "enter")
        await pilot.pause(0.1)
        assert app.current == "assets" and app.is_running
        assert app.pane("assets").filter_text == "10.10.0.1q"
        assert app.pane("assets").table.row_count == 0


async def test_comms_pairs_and_zone_matrix(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("3")
        pane = app.pane("comms")
        n = pane.table.row_count
        assert n >= 8
        text = H.screen_text(app)
        assert "Pairs" in text and "modbus" in text
        viol = [k for k, v in pane.values.items() if v["viol"]]
        assert viol, "the rogue scanner's pairs are violations of the demo policy"
        await pilot.press("x")
        await pilot.pause(0.1)
        assert pane.table.row_count == len(viol) < n
        await pilot.press("x", "v")
        await pilot.pause(0.1)
        assert pane.matrix_shown
        mt = app.query_one("#matrix")
        assert mt.row_count >= len(m.policy.zones)
        text = H.screen_text(app)
        assert "from \\ to" in text and "!" in text
        # Enter on a cell: the pairs of that zone → zone cell
        mt.move_cursor(row=0, column=1)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert not pane.matrix_shown and pane.filter_text.startswith("from:")


async def test_alerts_feed_filter_ack_detail(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("4")
        pane = app.pane("alerts")
        assert pane.table.row_count == len(m.alerts) > 0
        await pilot.press("slash", *"sev:high", "enter")
        await pilot.pause(0.1)
        high = [a for a in m.alerts.values() if a.severity in ("high", "critical")]
        assert pane.table.row_count == len(high)
        key = pane.table.selected_key()
        assert m.alerts[key].status == "open"
        await pilot.press("a")
        await pilot.pause(0.1)
        assert m.alerts[key].status == "acknowledged"
        assert "ack" in H.screen_text(app)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, AlertDetail)
        text = body(app)
        assert "Evidence" in text and "ATT&CK" in text and "frame" in text
        assert str(H.DEMO) in text or "demo-plant.pcap" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, AlertDetail)


async def test_read_only_hides_acknowledge(demo_model):
    m = demo_model()
    m.read_only = True
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("4", "a")
        await pilot.pause(0.1)
        assert all(a.status == "open" for a in m.alerts.values())
        assert "RO" in H.screen_text(app)


async def test_policy_screen_counts_and_reload_shows_errors(demo_model, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text(H.POLICY.read_text())
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import LiveModel

    m = LiveModel(ReplayFeed(str(H.DEMO), 0.0), str(pol), source=str(H.DEMO))
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("5")
        await pilot.pause(0.1)
        zt, ct = app.query_one("#zones"), app.query_one("#conduits")
        assert zt.row_count == len(m.policy.zones)
        assert ct.row_count == len(m.policy.conduits)
        text = H.screen_text(app)
        assert "zones" in text and "!" in text     # violations marked
        pol.write_text("version: 1\nzones:\n  a: {networks: [10.0.0.0/8]}\n  b: {networks: [10.1.0.0/16]}\n"
                       "conduits: [{name: x, from: [nowhere], to: [a]}]\n")
        await pilot.press("r")
        await pilot.pause(0.2)
        assert m.policy is None and m.policy_errors
        text = H.screen_text(app)
        assert "problem" in text and "policy.yaml:" in text


async def test_pause_shows_new_and_resume_catches_up(demo_model):
    m = demo_model()
    app = OtwatchApp(m, start_feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "p")
        m.feed.start()
        await _run(app, m, pilot)
        pane = app.pane("assets")
        assert pane.table.row_count == 0
        text = H.screen_text(app)
        assert "PAUSED +12 new" in text
        await pilot.press("p")
        await pilot.pause(0.1)
        assert pane.table.row_count == 12 and "PAUSED" not in H.screen_text(app)


async def test_help_is_generated_from_the_bindings(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("4", "question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one("Static").render().plain
        from otwatch.sensor.tui.alerts import AlertsPane

        for b in list(AlertsPane.BINDINGS) + list(OtwatchApp.BINDINGS):
            assert b.description in text, b
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_switches_screen(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"screen: Policy")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.current == "policy"


@pytest.mark.parametrize("posture", [False, True], ids=["findings", "posture-alerts"])
async def test_alerts_are_the_alerts_packages_as_analyze_raises_them(demo_model, tmp_path, posture):
    """The replayed TUI raises what ``otwatch analyze --policy`` stores: same ids, rules, severities,
    ATT&CK techniques and counts (one alerts package, its catalogue, its policy settings); with
    ``--posture-alerts`` on both, the configuration posture findings are alerts on both, the same ones."""
    import os
    import sqlite3
    import subprocess
    import sys

    from otwatch.sensor.alerts.catalogue import TECHNIQUES
    from otwatch.sensor.tui.cli import make_model

    db = tmp_path / "analyze.db"
    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    flag = ["--posture-alerts"] if posture else []
    subprocess.run([otwatch, "analyze", str(H.DEMO), "--policy", str(H.POLICY), "--db", str(db), "-q", *flag],
                   check=True, capture_output=True, env=dict(os.environ, OTWATCH_DB=str(db)))
    conn = sqlite3.connect(db)
    stored = {r[0]: r[1:] for r in conn.execute("SELECT id, rule, severity, technique, count FROM alerts")}
    conn.close()
    demo_model()                            # the fixture's working directory (the checkout)
    m = make_model(H.DEMO_REL, policy=str(H.POLICY), posture_alerts=posture)    # as `otwatch tui` builds it
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await _run(app, m, pilot)
        shown = {a.id: (a.rule, a.severity, a.technique, a.count) for a in m.alerts.values()}
        assert shown == stored
        assert {r[0].split(".")[0] for r in shown.values()} >= {"policy", "posture", "protocol", "recon"}
        posture_only = {k for k, r in shown.items() if r[0] in FINDING_ONLY}
        if not posture:
            # the demo plant with its policy: 30 alerts (38 before the configuration posture findings became
            # inventory-only findings; the TUI shows the same as analyze, so none of those either; 29 before
            # the rogue's writes raised command.modbus_rogue_writer)
            assert len(shown) == 30 and not posture_only
        else:
            # --posture-alerts: the findings are alerts too, and the Alerts screen lists them
            assert len(shown) > 30 and posture_only
            await pilot.press("4", "slash", *"rule:posture.", "enter")
            await pilot.pause(0.2)
            pane = app.pane("alerts")
            assert posture_only <= set(pane.table.cells)
            assert all(shown[k][0].startswith("posture.") for k in pane.table.cells)
            await pilot.press("escape")
        # the detail names the technique as the catalogue does
        key = next(k for k, v in shown.items() if v[2])
        app.pane("alerts")
        await pilot.press("4")
        pane = app.pane("alerts")
        pane.table.move_cursor(row=pane.table.get_row_index(key))
        await pilot.press("enter")
        await pilot.pause(0.2)
        name = TECHNIQUES[shown[key][2]]
        name = name[0] if isinstance(name, tuple) else name
        assert f"{shown[key][2]} {name}" in body(app)


def test_posture_alerts_is_refused_on_a_database():
    """On --db the sensor that wrote the database decided which findings are alerts: one line, exit 2."""
    import os
    import subprocess
    import sys

    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    r = subprocess.run([otwatch, "tui", "--posture-alerts", "--db", str(H.DEMO)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--posture-alerts applies to a capture" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


async def test_who_talks_to_whom_by_zone_and_around_an_asset(demo_model):
    from otwatch.sensor.tui.talkmap import TalkMap

    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 40)) as pilot:
        await _run(app, m, pilot)
        await pilot.press("3", "w")
        await pilot.pause(0.2)
        assert isinstance(app.screen, TalkMap)
        text = body(app)
        pairs = app.pane("comms").values
        assert f"{len(pairs):,} pairs in" in text
        # the rogue laptop's zone → control block comes first (violations first), marked
        first = text.split("\n")[2]
        assert first.startswith("unzoned ══▶ control") and "violating" in first
        assert "! 10.10.0.66 ──modbus/502──▶ plc1 (10.10.0.11)" in text
        # the HMI's polling of plc1, with the messages the Comms screen counts
        hmi = next(v for v in pairs.values() if v["cip"] == "10.10.0.21" and v["sip"] == "10.10.0.11")
        assert "supervisory ══▶ control" in text
        assert f"──modbus/502──▶ plc1 (10.10.0.11)  {hmi['messages']:,} msgs" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TalkMap)
        # around one asset: plc1 is polled by the HMI and the engineering workstation
        await pilot.press("2", "slash", *"plc1", "enter")
        await pilot.pause(0.1)
        await pilot.press("w")
        await pilot.pause(0.2)
        text = body(app)
        assert "around plc1 (10.10.0.11)" in text and "(zone control)" in text
        inbound = [r for r in m.kids(app.screen_stack[0].query_one("#pane-assets").table.selected_key())["peers"]
                   if r["direction"] == "server"]
        assert f"0 it talks to (──▶), {len(inbound)} talk to it" in text
        assert "──modbus/502──▶ plc1 (10.10.0.11)" in text
