"""The sensor end to end: veth replay in, a real rsyslog (TLS, RFC 5424 / CEF) out.

The demo plant is replayed into the sensor's interface; the sensor's alerts and
heartbeats reach an rsyslog running in the sensor's namespace (its loopback),
parse strictly, and carry every alert the sensor stored.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from support.rsyslog import RSYSLOGD, Collector
from support.syslog_strict import parse_cef, parse_rfc5424
from support.veth import VethPair, available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
POLICY = os.path.join(ROOT, "rules", "demo-plant.yaml")
OTWATCH = os.path.join(os.path.dirname(sys.executable), "otwatch")

why = available() or (None if shutil.which("tcpreplay") else "tcpreplay missing") or \
    (None if RSYSLOGD else "rsyslogd missing")
pytestmark = [pytest.mark.netns, pytest.mark.skipif(why is not None, reason=why or "")]


def test_alerts_and_heartbeats_reach_rsyslog_over_tls():
    work = tempfile.mkdtemp(prefix="otwatch-e2e-")
    os.chmod(work, 0o777)
    v = VethPair()
    try:
        v.ns(v.sensor_ns, "ip", "link", "set", "lo", "up")
        os.makedirs(os.path.join(work, "rs"))
        c = Collector(os.path.join(work, "rs"), "tls", netns=v.sensor_ns)
        c.start()
        for f in ("ca",):
            os.chmod(c.certs[f], 0o644)
        os.chmod(os.path.join(work, "rs"), 0o755)
        cef = os.path.join(work, "rs2")
        os.makedirs(cef)
        c2 = Collector(cef, "tcp", netns=v.sensor_ns)
        c2.start()
        db = os.path.join(work, "s.db")
        err_path = os.path.join(work, "sensor.err")
        with open(err_path, "w") as err:
            proc = v.popen(v.sensor_ns, [OTWATCH, "sensor", "-i", v.sensor_if, "--db", db, "--user", "nobody",
                                         "--policy", POLICY, "--heartbeat", "1",
                                         "--syslog", f"tls://127.0.0.1:{c.port}?format=rfc5424&ca={c.certs['ca']}"
                                                     "&servername=localhost&hostname=sensor-e2e",
                                         "--syslog", f"tcp://127.0.0.1:{c2.port}?format=cef&min_severity=medium"],
                           stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, OTWATCH_DB=db))
            deadline = time.monotonic() + 30
            while "privileges:" not in open(err_path).read():
                assert proc.poll() is None and time.monotonic() < deadline, open(err_path).read()
                time.sleep(0.1)
            v.ns(v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if, "--pps", "5000", DEMO)
            time.sleep(3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, open(err_path).read()
        con = sqlite3.connect(db)
        stored = {r[0]: r[1] for r in con.execute("SELECT id, severity FROM alerts")}
        con.close()
        assert stored, "the demo plant with its policy raises alerts"
        lines = c.wait_for(lambda got: len({parse_rfc5424(g)["sd"]["otwatch@32473"].get("alert_id")
                                            for g in got} - {None}) >= len(stored), timeout=30)
        got = [parse_rfc5424(g) for g in lines]
        assert all(g["hostname"] == "sensor-e2e" for g in got)
        kinds = {g["msgid"] for g in got}
        assert {"alert", "heartbeat"} <= kinds
        alert_ids = {g["sd"]["otwatch@32473"]["alert_id"] for g in got if g["msgid"] == "alert"}
        assert alert_ids == set(stored)
        want_cef = {a for a, s in stored.items() if s in ("medium", "high", "critical")}
        lines2 = c2.wait_for(lambda got: len(got) >= len(want_cef), timeout=30)
        cef_ids = {parse_cef(parse_rfc5424(g)["msg"])["ext"]["cs6"] for g in lines2}
        assert cef_ids and all(parse_cef(parse_rfc5424(g)["msg"])["severity"] >= 5 for g in lines2)
        c.stop()
        c2.stop()
    finally:
        v.close()
        shutil.rmtree(work, ignore_errors=True)
