"""The TUI at 10,000 assets: opens, scrolls, filters, sorts and shows the right rows (no timing asserted).

bench/make_big_plant.py writes a plant of 10,000 hosts (PLCs polled by HMIs,
MQTT sensors, misplaced sensors polling PLCs, a rogue laptop writing to 200
PLCs) and its policy; ``otwatch analyze --db --policy`` puts it through the
real pipeline into a database (inventory and alerts); the TUI browses it
(``--db``).  What each screen lists is compared with the database read
independently (SQL).  How fast it answers is measured in bench/tui_latency.py
(docs/performance.md, "Terminal UI at 10,000 assets"), not here.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sqlite3
import subprocess
import sys

import pytest

from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.assets import AssetDetail
from otwatch.sensor.tui.model import DbModel

ROOT = pathlib.Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)
_spec = importlib.util.spec_from_file_location("make_big_plant", ROOT / "bench" / "make_big_plant.py")
big = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(big)

ASSETS = 10_000


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    pcap, pol, db = d / "big.pcap", d / "big.yaml", d / "big.db"
    info = big.build(str(pcap), ASSETS, quiet=True)
    assert info["hosts"] == ASSETS
    big.write_policy(str(pol))
    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    r = subprocess.run([otwatch, "analyze", str(pcap), "--db", str(db), "--policy", str(pol), "--quiet"],
                       capture_output=True, text=True, env=dict(os.environ, OTWATCH_DB=str(db)))
    assert r.returncode == 0, r.stderr
    return db, pol


def _sql(db, q, *args):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(q, args).fetchall()
    finally:
        conn.close()


def _shown(table) -> list:
    """Row keys in the order the table shows them."""
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


async def test_ten_thousand_assets_open_filter_sort_detail(big_db):
    db, pol = big_db
    m = DbModel(str(db), str(pol))
    assert len(m.assets) == ASSETS
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert "10,000 assets" in H.screen_text(app)
        await pilot.press("2")
        await pilot.pause(0.2)
        pane, t = app.pane("assets"), app.pane("assets").table
        assert t.row_count == ASSETS
        assert "Assets 10,000/10,000" in H.screen_text(app)
        # sorted by IP (octets, not text): 10.10.0.1 first, and 10.10.0.10 after 10.10.0.9
        order = _shown(t)
        ips = [m.assets[k]["ip"] for k in order]
        assert ips == sorted(ips, key=lambda s: tuple(int(x) for x in s.split(".")))
        # scroll: a page down and to the bottom keep the cursor on a real row
        await pilot.press("pagedown", "pagedown", "j")
        assert t.cursor_row > 10 and t.selected_key() == order[t.cursor_row]
        await pilot.press("G")
        await pilot.pause(0.1)
        assert t.selected_key() == order[-1]
        assert "10.99.0.66" in H.screen_text(app)               # the rogue laptop has the highest address
        await pilot.press("g")
        # filter, typed a character at a time: exactly the assets the database has at those addresses
        want = {a for (a,) in _sql(db, "SELECT asset_id FROM assets WHERE ip LIKE '10.30.0.4%'")}
        assert len(want) == 11
        await pilot.press("slash", *"10.30.0.4", "enter")
        await pilot.pause(0.1)
        assert set(t.cells) == want
        assert "Assets 11/10,000" in H.screen_text(app)
        # open the selected asset: its detail, with its peer (a broker)
        key = t.selected_key()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, AssetDetail) and app.screen.aid == key
        body = app.screen.query_one("#detail-body").render().plain
        assert m.assets[key]["ip"] in body and "10.40.0." in body
        await pilot.press("escape", "escape")
        await pilot.pause(0.1)
        assert t.row_count == ASSETS
        # field filter and sort: the PLCs, by class then inverted
        await pilot.press("slash", *"class:plc", "enter")
        await pilot.pause(0.1)
        plcs = {a for (a,) in _sql(db, "SELECT asset_id FROM assets WHERE device_class = 'plc'")}
        assert len(plcs) == ASSETS // big.PLC_EVERY and set(t.cells) == plcs
        await pilot.press("I")
        await pilot.pause(0.1)
        ips = [m.assets[k]["ip"] for k in _shown(t)]
        assert ips == sorted(ips, key=lambda s: tuple(int(x) for x in s.split(".")), reverse=True)
        await pilot.press("escape")
        # communications: every client→server pair of the database; the rogue's pairs are violations
        await pilot.press("3")
        await pilot.pause(0.2)
        comms = app.pane("comms")
        await H.wait_read(pilot, comms)          # 10,162 pairs are read a slice at a time
        (npairs,), = _sql(db, "SELECT count(*) FROM peers WHERE direction = 'client'")
        assert comms.table.row_count == npairs > ASSETS - ASSETS // big.PLC_EVERY
        await pilot.press("x")
        await pilot.pause(0.1)
        rogue = {k for k, v in comms.values.items() if "10.99.0.66" in v["asset"]}
        assert len(rogue) == big.ROGUE_TARGETS and rogue <= set(comms.table.cells)
        assert all(comms.values[k]["viol"] for k in comms.table.cells)
        # alerts: the feed, and one rule of it
        await pilot.press("4")
        await pilot.pause(0.2)
        alerts = app.pane("alerts")
        (nopen,), = _sql(db, "SELECT count(*) FROM alerts WHERE status = 'open'")
        assert alerts.table.row_count == min(nopen, 2000) > 0
        await pilot.press("slash", *"rule:policy.flow_denied", "enter")
        await pilot.pause(0.1)
        (ndenied,), = _sql(db, "SELECT count(*) FROM alerts WHERE rule = 'policy.flow_denied'")
        assert alerts.table.row_count == ndenied > 0
        assert app.is_running
