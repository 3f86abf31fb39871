"""Attached to a database a sensor writes: the TUI (``--db``) re-reads it read-only and shows what is new.

* In process: the demo plant's inventory in a database, the app browsing it;
  another connection then writes what a running sensor writes (an outbox
  heartbeat through ``sinks.outbox.Outbox``, the alert into the alerts store
  through ``alerts.store.AlertStore`` and to the outbox through
  ``sinks.alertfeed.OutboxAlerts``): the header says "attached" and the alert
  appears in the feed, with its ATT&CK technique, without a key press.
* A database without the ``alerts`` table (an older sensor): the outbox's
  ``alert`` records are listed instead.
* A real sensor (``otwatch sensor``) on a veth in network namespaces, the demo
  plant replayed into it with tcpreplay, the TUI attached to its database: the
  assets appear while it runs (and, when the alerts stage is installed, the
  policy alerts).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from otwatch.sensor.alerts.model import Evidence, Finding, Alert
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.model import DbModel

_spec = importlib.util.spec_from_file_location("tui_conftest", pathlib.Path(__file__).with_name("conftest.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

WAIT_S = 30.0


async def _until(pilot, cond, what: str) -> None:
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        await pilot.pause(0.1)
        if cond():
            return
    raise AssertionError(f"{what} did not happen")


def _finding():
    return Finding("policy.flow_denied", ("unzoned", "control", "10.10.0.66", "10.10.0.11", 502), "high", "policy",
                   "10.10.0.66 (zone unzoned) → 10.10.0.11 (zone control): no conduit allows it",
                   Evidence("iface:vs", 4711, 1_700_000_000.0, 3), "10.10.0.66", "10.10.0.11",
                   src_zone="unzoned", dst_zone="control", protocol="modbus", port=502, technique="T0886")


async def test_attached_database_shows_a_new_alert(demo_db, tmp_path):
    from otwatch.sensor.alerts.aggregate import AlertChange
    from otwatch.sensor.alerts.store import AlertStore, connect
    from otwatch.sensor.sinks.alertfeed import OutboxAlerts
    from otwatch.sensor.sinks.outbox import Outbox

    path = tmp_path / "live.db"
    shutil.copy(demo_db, path)
    m = DbModel(str(path))
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        assert app.pane("alerts").table.row_count == 0
        assert "attached" not in H.screen_text(app)
        ob = Outbox(str(path))
        ob.append("heartbeat", "hb:test:1", "info", time.time(),
                  {"message": "sensor test alive on iface:vs", "packets": 5315, "packets_per_s": 118.0})
        alert = Alert.from_finding(_finding())
        store = AlertStore(connect(str(path)))            # what the sensor's alert book writes (sensor/live/cli.py)
        store.write([AlertChange(alert, 1, True)])
        store.close_db()
        OutboxAlerts(ob)([alert])
        await _until(pilot, lambda: app.pane("alerts").table.row_count == 1, "the new alert in the feed")
        text = H.screen_text(app)
        assert "policy.flow_denied" in text and "HIGH" in text and "attached" in text
        await pilot.press("enter")
        await pilot.pause(0.2)
        body = app.screen.query_one("#detail-body").render().plain
        assert "T0886" in body and "frame 4711" in body
        # acknowledged in the store, through the store's own API
        await pilot.press("a")
        await pilot.pause(0.2)
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT status FROM alerts WHERE id = ?", (alert.id,)).fetchone()[0] == "acknowledged"
        conn.close()
        await pilot.press("escape", "1")
        await pilot.pause(0.3)
        assert "118 packets/s" in H.screen_text(app)


async def test_without_an_alerts_table_the_outbox_alerts_are_listed(demo_db, tmp_path):
    from otwatch.sensor.sinks.alertfeed import OutboxAlerts
    from otwatch.sensor.sinks.outbox import Outbox

    path = tmp_path / "old.db"
    shutil.copy(demo_db, path)
    OutboxAlerts(Outbox(str(path)))([Alert.from_finding(_finding())])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE IF EXISTS alerts")       # opening the outbox may have run the alerts migration
    conn.commit()
    conn.close()
    m = DbModel(str(path))
    assert [a.rule for a in m.alerts.values()] == ["policy.flow_denied"]


@pytest.mark.netns
def test_attached_to_a_running_sensor_fed_by_tcpreplay():
    sys.path.insert(0, str(H.ROOT / "tests"))
    from support.veth import VethPair, available

    why = available() or (None if shutil.which("tcpreplay") else "tcpreplay missing (tests/run.sh installs it)")
    if why:
        pytest.skip(why)
    otwatch = os.path.join(os.path.dirname(sys.executable), "otwatch")
    work = tempfile.mkdtemp(prefix="otwatch-tui-attach-")
    os.chmod(work, 0o777)
    db = os.path.join(work, "sensor.db")
    v = VethPair(f"t{os.getpid() % 10000}")
    err = open(os.path.join(work, "sensor.err"), "w+")
    proc = None
    try:
        proc = v.popen(v.sensor_ns, [otwatch, "sensor", "-i", v.sensor_if, "--db", db, "--user", "nobody",
                                     "--heartbeat", "1", "--interval", "1", "--policy", str(H.POLICY)],
                       stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, OTWATCH_DB=db))
        deadline = time.monotonic() + 30
        while not os.path.exists(db) or "privileges:" not in open(err.name).read():
            assert proc.poll() is None, open(err.name).read()
            assert time.monotonic() < deadline, open(err.name).read()
            time.sleep(0.1)
        import asyncio

        async def drive():
            m = DbModel(db)
            app = OtwatchApp(m)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press("2")
                assert len(m.assets) == 0
                replay = subprocess.Popen(["ip", "netns", "exec", v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if,
                                           "--pps", "2000", str(H.DEMO)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                try:
                    await _until(pilot, lambda: app.pane("assets").table.row_count >= 10, "assets from the sensor")
                    await _until(pilot, lambda: m.attached, "a heartbeat")
                    assert "attached" in H.screen_text(app)
                    try:
                        import otwatch.sensor.alerts.analysis  # noqa: F401
                    except ImportError:
                        return           # this sensor has no alert stage yet: nothing to alert on
                    await pilot.press("4")
                    await _until(pilot, lambda: app.pane("alerts").table.row_count > 0, "a policy alert")
                    assert "policy." in H.screen_text(app)
                finally:
                    replay.wait(60)

        asyncio.run(drive())
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        v.close()
        shutil.rmtree(work, ignore_errors=True)
