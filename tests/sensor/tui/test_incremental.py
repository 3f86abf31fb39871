"""Big tables update rows by key: a refresh re-reads only the rows whose data changed (issue 16).

The Comms screen used to re-read every pair of every asset a tick touched (a
broker touched by one publish: its thousand pairs), and a screen shown after a
busy while re-read them all twice.  These tests count what a refresh re-reads
(``record``) and which table rows it writes, on the demo plant replayed to the end.
"""
from __future__ import annotations

import importlib.util
import pathlib

from otwatch.sensor.tui import alerts as alerts_mod
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.comms import CommsPane
from otwatch.sensor.tui.model import Changes

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


def _spy(pane, monkeypatch) -> dict:
    """Count the rows *pane* re-reads and the table rows it writes (cells updated, rows added or removed,
    whole loads)."""
    seen = {"record": [], "cell": [], "add": [], "remove": [], "load": 0}
    record, t = pane.record, pane.table
    update_cell, add_row, remove_row, load = t.update_cell, t.add_row, t.remove_row, t.load

    def rec(key):
        seen["record"].append(key)
        return record(key)

    def cell(row_key, column_key, value, **kw):
        seen["cell"].append((getattr(row_key, "value", row_key), column_key))
        return update_cell(row_key, column_key, value, **kw)

    def add(*cells, key=None, **kw):
        seen["add"].append(key)
        return add_row(*cells, key=key, **kw)

    def remove(key):
        seen["remove"].append(key)
        return remove_row(key)

    def ld(rows):
        seen["load"] += 1
        return load(rows)

    monkeypatch.setattr(pane, "record", rec)
    monkeypatch.setattr(t, "update_cell", cell)
    monkeypatch.setattr(t, "add_row", add)
    monkeypatch.setattr(t, "remove_row", remove)
    monkeypatch.setattr(t, "load", ld)
    return seen


async def _comms(demo_model):
    m = demo_model()
    app = OtwatchApp(m)
    return m, app


async def _comms_read(pilot, app, m):
    """The replay done, Comms shown and every pair read: its pane."""
    await H.wait_done(pilot, m)
    await pilot.press("3")
    await pilot.pause()
    pane = app.pane("comms")
    await H.wait_read(pilot, pane)
    return pane


async def test_one_changed_pair_rereads_only_its_row(demo_model, monkeypatch):
    m, app = await _comms(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await _comms_read(pilot, app, m)
        n = pane.table.row_count
        assert n >= 8 and n == len(pane.values)
        # the pair whose two assets have the most other pairs (an old-style refresh re-reads them all)
        key = max(pane.values, key=lambda k: len(pane._by_asset[pane._rows[k]["asset_id"]])
                  + len(pane._by_asset[pane._rows[k]["peer_id"]]))
        row = pane._rows[key]
        cid, sid = row["asset_id"], row["peer_id"]
        assert len(pane._by_asset[cid] | pane._by_asset[sid]) >= 3
        before = {k: pane.table.cells[k] for k in pane.table.cells}
        seen = _spy(pane, monkeypatch)

        # a tick that touched every asset but moved no counter: nothing is re-read, no row written
        pane.refresh_data(Changes(assets=set(m.assets.keys()), any=True))
        await pilot.pause()
        assert seen["record"] == [] and seen["cell"] == [] and seen["load"] == 0

        # one pair's counters move (the inventory's peers row, as an aggregate does): only its row
        op = next(iter(row["ops"]))
        row["ops"][op] += 7
        row["messages"] += 7
        pane.refresh_data(Changes(assets={cid, sid}, any=True))
        await pilot.pause()
        assert seen["record"] == [key]
        assert {k for k, _c in seen["cell"]} == {key} and "messages" in {c for _k, c in seen["cell"]}
        assert seen["add"] == [] and seen["remove"] == [] and seen["load"] == 0
        assert pane.values[key]["messages"] == row["messages"]
        assert pane.table.cells[key][4].plain == f"{row['messages']:,}"
        assert all(pane.table.cells[k] is before[k] for k in before if k != key)


async def test_end_of_replay_rereads_only_what_changed(demo_model, monkeypatch):
    """The model's end-of-capture "every asset changed" refresh of a Comms already read: a signature
    pass, not a rebuild."""
    m, app = await _comms(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await _comms_read(pilot, app, m)
        seen = _spy(pane, monkeypatch)
        pane.refresh_data(Changes(assets={"*"}, any=True))
        await pilot.pause()
        assert seen["record"] == [] and seen["load"] == 0


async def test_comms_read_in_slices_once(demo_model, monkeypatch):
    """A first show reads every pair exactly once, a slice at a time, and ends with the same table as a
    read in one go."""
    monkeypatch.setattr(CommsPane, "SLICE_ROWS", 3)
    m, app = await _comms(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        pane = app.pane("comms")
        seen = _spy(pane, monkeypatch)
        await pilot.press("3")
        await H.wait_read(pilot, pane)
        await pilot.pause(0.3)                       # a few more ticks: nothing moved, nothing re-read
        n = len(pane.values)
        assert n > 3 * 3
        assert sorted(seen["record"]) == sorted(pane.values) and len(seen["record"]) == n
        assert pane.table.row_count == n
        sliced = {k: [c.plain for c in cells] for k, cells in pane.table.cells.items()}
        order = [pane.table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(n)]
        monkeypatch.setattr(CommsPane, "SLICE_ROWS", None)
        pane.refresh_data(full=True)
        await pilot.pause()
        assert {k: [c.plain for c in cells] for k, cells in pane.table.cells.items()} == sliced
        assert [pane.table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(n)] == order


async def test_full_alert_feed_updates_by_key(demo_model, monkeypatch):
    """With more alerts than the feed lists, a changed alert re-reads its row only, not the feed."""
    m, app = await _comms(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await H.wait_done(pilot, m)
        total = len(m.alerts)
        assert total >= 6
        monkeypatch.setattr(alerts_mod, "FEED_MAX", total - 2)
        await pilot.press("4")
        await pilot.pause()
        pane = app.pane("alerts")
        pane.refresh_data(full=True)
        await pilot.pause()
        assert pane.table.row_count == total - 2
        shown = set(pane.table.cells)
        newest = max(shown, key=lambda k: m.alerts[k].last_ts)
        seen = _spy(pane, monkeypatch)
        m.alerts[newest].count += 1
        pane.refresh_data(Changes(alerts={newest}, any=True))
        await pilot.pause()
        assert seen["record"] == [newest] and seen["load"] == 0
        assert {k for k, _c in seen["cell"]} == {newest}
        # an alert left out (older) moves to the top: it comes in, the oldest listed goes out
        out = next(k for k in m.alerts if k not in shown)
        m.alerts[out].last_ts = m.alerts[newest].last_ts + 1
        pane.refresh_data(Changes(alerts={out}, any=True))
        await pilot.pause()
        left = shown - set(pane.table.cells)
        assert out in pane.table.cells and len(left) == 1 and pane.table.row_count == total - 2
        assert sorted(seen["record"][1:]) == sorted({out} | left) and seen["load"] == 0
