"""The live sensor while another process holds its database's write lock for longer than the sensor waits.

A second process takes ``BEGIN IMMEDIATE`` on the sensor's database and keeps
it for 14 s while the demo plant is replayed.  The sensor must not stop or
print a traceback: its writers wait briefly (``CAPTURE_APPEND_WAIT``) and then
hold what the lock refuses in memory (the inventory, alert changes, outbox
records; a heartbeat that cannot be written is a logged skip), saying so once
with the pid that holds the lock, so the capture never stalls; once the lock
is free everything is written and delivered: every packet seen, every stored
alert at rsyslog.
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
from support.syslog_strict import parse_rfc5424
from support.veth import VethPair, available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
POLICY = os.path.join(ROOT, "rules", "demo-plant.yaml")
OTWATCH = os.path.join(os.path.dirname(sys.executable), "otwatch")

why = available() or (None if shutil.which("tcpreplay") else "tcpreplay missing") or \
    (None if RSYSLOGD else "rsyslogd missing")
pytestmark = [pytest.mark.netns, pytest.mark.skipif(why is not None, reason=why or "")]

HOLD_SECONDS = 14
HOLDER = f"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep({HOLD_SECONDS})
c.execute("COMMIT")
"""


def _frames(path: str) -> int:
    import dpkt

    with open(path, "rb") as fh:
        return sum(1 for _ in dpkt.pcap.Reader(fh))


def test_a_held_database_is_waited_for_not_a_crash():
    work = tempfile.mkdtemp(prefix="otwatch-held-")
    os.chmod(work, 0o777)
    v = VethPair()
    try:
        v.ns(v.sensor_ns, "ip", "link", "set", "lo", "up")
        os.makedirs(os.path.join(work, "rs"))
        col = Collector(os.path.join(work, "rs"), "tcp", netns=v.sensor_ns)
        col.start()
        db = os.path.join(work, "s.db")
        err_path = os.path.join(work, "sensor.err")
        with open(err_path, "w") as err:
            proc = v.popen(v.sensor_ns, [OTWATCH, "sensor", "-i", v.sensor_if, "--db", db, "--user", "nobody",
                                         "--policy", POLICY, "--heartbeat", "1", "--interval", "1",
                                         "--syslog", f"tcp://127.0.0.1:{col.port}?format=rfc5424"],
                           stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, OTWATCH_DB=db))
            deadline = time.monotonic() + 30
            while "privileges:" not in open(err_path).read():
                assert proc.poll() is None and time.monotonic() < deadline, open(err_path).read()
                time.sleep(0.1)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, db], stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "holding"
            v.ns(v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if, "--multiplier", "4", DEMO)
            assert holder.wait(60) == 0
            time.sleep(3)
            assert proc.poll() is None, open(err_path).read()     # still running after the lock was held
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(90) == 0, open(err_path).read()
        log = open(err_path).read()
        assert "Traceback" not in log, log
        n = _frames(DEMO)
        assert f"stopped after {n} packets (0 dropped" in log, log
        # the capture did not wait on the lock: what it refused was kept in memory, said once, then written
        held = [ln for ln in log.splitlines() if "inventory not written yet, kept in memory" in ln]
        assert len(held) == 1 and f"held by pid {holder.pid} (" in held[0], log
        assert "inventory written again after" in log, log
        con = sqlite3.connect(db)
        stored = {r[0] for r in con.execute("SELECT id FROM alerts")}
        hosts = con.execute("SELECT count(*) FROM assets").fetchone()[0]
        con.close()
        assert stored and hosts

        def alert_ids(lines):
            return {parse_rfc5424(g)["sd"]["otwatch@32473"].get("alert_id") for g in lines}

        lines = col.wait_for(lambda got: alert_ids(got) >= stored, timeout=30)
        assert stored <= alert_ids(lines)
        col.stop()
    finally:
        v.close()
        shutil.rmtree(work, ignore_errors=True)
