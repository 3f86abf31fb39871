"""Hostile strings from the wire (ESC/CSI/OSC, C1, bidi, markup, a 10,000-character name) stay inert on every screen.

A database holds an asset whose host name, MQTT topic, identity values and
vendor are hostile, and an alert whose rule, message and details are; the
TUI browses it (``--db``), every screen and both detail views are shown, every
table cell is a ``Text`` (never parsed as markup), nothing of the control
characters reaches the screen, the markup shows literally, and clicking every
row (incl. a ``[@click=app.quit]`` name) leaves the app running.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib
import sqlite3

from rich.text import Text

from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.model import DbModel
from otwatch.sensor.tui.widgets import KeyTable

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

HOSTILE = ["[@click=app.quit]PLC", "[red]x", "[/]", '[link="http://x"]y[/link]', "\x1b[2J\x1b[H", "\x1b]52;c;aGk=\x07",
           "\x1b]0;owned\x07", "A\rB", "\x9b31m", "\u202eTXT", "zero\u200bwidth", "N" * 10_000]
ALERT_COLUMNS = {"id": str, "rule": str, "severity": str, "category": str, "message": str, "src": str, "dst": str,
                 "src_asset": str, "dst_asset": str, "src_zone": str, "dst_zone": str, "protocol": str, "port": int,
                 "technique": str, "first_ts": float, "last_ts": float, "count": int, "evidence": str,
                 "details": str, "status": str, "close_reason": str, "status_at": str, "status_note": str,
                 "reopened": int}
"""The alerts table as sensor/alerts/store.py creates it (docs/alerts.md)."""


def make_db(path: pathlib.Path) -> None:
    from otwatch.sensor.inventory.store import connect

    db = connect(str(path))
    t0 = 1_700_000_000.0
    for i, name in enumerate(HOSTILE):
        aid = f"mac:02:00:00:00:00:{i:02x}"
        db["assets"].insert({"asset_id": aid, "anchor": "mac", "mac": aid[4:], "vendor": name, "ip": f"10.9.0.{i + 1}",
                             "via": "", "zone": name, "device_class": "plc", "class_confidence": 0.5,
                             "class_reason": name, "gateway": 0, "first_seen": t0, "last_seen": t0 + i,
                             "first_frame": 1, "packets_sent": i, "bytes_sent": 0, "packets_received": 0,
                             "bytes_received": 0, "behaviour": "{}", "dropped": "{}", "vlan": 0})
        db["names"].insert({"asset_id": aid, "name": name, "source": "dhcp", "ip": f"10.9.0.{i + 1}",
                            "first_seen": t0, "last_seen": t0, "frame": 1})
        db["topics"].insert({"asset_id": aid, "topic": "plant/" + name, "how": "publish", "ip": "", "first_seen": t0,
                             "last_seen": t0, "frame": 2})
        db["identity"].insert({"asset_id": aid, "protocol": "opcua", "attribute": "CertificateSubject", "value": name,
                               "source": "opcua.get_endpoints", "ip": "", "first_seen": t0, "frame": 3,
                               "last_seen": t0, "last_frame": 3, "changes": 0})
        if i:
            db["peers"].insert({"asset_id": f"mac:02:00:00:00:00:{0:02x}", "peer_id": aid, "protocol": "mqtt",
                                "direction": "client", "port": 1883, "ip": "10.9.0.1", "peer_ip": f"10.9.0.{i + 1}",
                                "ops": json.dumps({name[:40]: 1}), "messages": 3, "first_seen": t0, "last_seen": t0 + 1,
                                "frame": 4})
    if "alerts" not in db.table_names():      # the alerts package's migration may have made it already
        db["alerts"].create(ALERT_COLUMNS, pk="id")
    for i, name in enumerate(HOSTILE):
        db["alerts"].insert({"id": f"{i:020x}", "rule": "policy." + name, "severity": "high", "category": "policy",
                             "message": f"topic {name} published", "src": "10.9.0.1", "dst": f"10.9.0.{i + 1}",
                             "src_asset": "", "dst_asset": "", "src_zone": name, "dst_zone": "", "protocol": "mqtt",
                             "port": 1883, "technique": "T0830", "first_ts": t0, "last_ts": t0 + i, "count": 1,
                             "evidence": json.dumps([[name, 7, t0, 0]]), "details": json.dumps({name: name}),
                             "status": "open", "close_reason": "", "status_at": "", "status_note": "", "reopened": 0})
    db.conn.commit()
    db.close()


def check_screen(app) -> str:
    svg = app.export_screenshot()
    for bad in ("\x1b", "\x07", "\x9b", "\u202e", "\u200b", "\r"):
        assert bad not in svg, repr(bad)
    for table in app.screen.query(KeyTable):
        for cells in table.cells.values():
            assert all(isinstance(c, Text) for c in cells)
    return H.screen_text(app)


async def test_hostile_strings_are_inert_on_every_screen(tmp_path):
    path = tmp_path / "hostile.db"
    make_db(path)
    from otwatch.sensor.baseline.model import Baseline
    from otwatch.sensor.baseline.store import save_baseline

    b = Baseline()
    for i, name in enumerate(HOSTILE):           # MQTT topics learned into the baseline, shown on its screen
        b.add_entry(f"pair 10.9.0.1>10.9.0.{i + 2} mqtt/1883 publish plant/{name}")
    save_baseline(b, str(tmp_path / "baseline.yaml"))
    m = DbModel(str(path), baseline_path=str(tmp_path / "baseline.yaml"))
    assert len(m.assets) == len(HOSTILE) and len(m.alerts) == len(HOSTILE)
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        shown = check_screen(app)
        await pilot.press("2")
        await pilot.pause(0.2)
        shown = check_screen(app)
        assert "[@click=app.q" in shown and "[red]x" in shown and "[/]" in shown   # literal, not markup
        assert "\\x1b[2J" in shown                     # the escape is visible as text
        assert "<U+202E>TXT" in shown
        assert "Assets 12/12" in shown                 # the 10,000-character name did not break the layout
        for row in range(len(HOSTILE)):                 # click every row: nothing but the row's own detail
            await pilot.click("#pane-assets KeyTable", offset=(3, row + 1))
            await pilot.pause(0.05)
            assert app.is_running
            if app.screen is not app.screen_stack[0]:
                check_screen(app)
                await pilot.press("escape")
        app.pane("assets").table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause(0.2)
        check_screen(app)
        body = app.screen.query_one("#detail-body").render()
        assert "[@click=app.quit]PLC" in getattr(body, "plain", str(body))
        await pilot.press("escape")
        for key in ("3", "4", "5"):
            await pilot.press(key)
            await pilot.pause(0.2)
            shown = check_screen(app)
            assert app.is_running
        await pilot.press("4", "enter")
        await pilot.pause(0.2)
        check_screen(app)
        for row in range(len(HOSTILE)):
            await pilot.press("escape", "4")
            app.pane("alerts").table.move_cursor(row=row)
            await pilot.press("enter")
            await pilot.pause(0.05)
            check_screen(app)
        await pilot.press("escape", "3", "v")
        await pilot.pause(0.2)
        check_screen(app)
        await pilot.press("v", "w")                    # who talks to whom, by zone (hostile zones and names)
        await pilot.pause(0.2)
        shown = check_screen(app)
        assert type(app.screen).__name__ == "TalkMap" and "[@click=app.q" in shown
        await pilot.press("escape", "2", "w")          # ... and around an asset with hostile names
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "TalkMap"
        check_screen(app)
        await pilot.press("escape", "b")                # the baseline's entries (hostile topics)
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "BaselineScreen"
        check_screen(app)
        assert app.screen.query_one("#baseline-entries").table.row_count > len(HOSTILE)
        await pilot.press("slash", *"click", "enter")
        await pilot.pause(0.2)
        assert "plant/[@click=app.quit]PLC" in check_screen(app)
        await pilot.press("escape", "slash", *"[2j", "enter")
        await pilot.pause(0.2)
        assert "\\x1b[2J" in check_screen(app)
        assert app.is_running
