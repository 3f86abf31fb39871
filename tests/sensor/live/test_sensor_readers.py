"""Readers while the live sensor writes: the CLI and the TUI's read path on the same database.

The demo plant is replayed (tcpreplay, four times real speed) into a live
``otwatch sensor`` on a veth pair; the sensor writes its inventory, alerts,
outbox and heartbeats every second of packet time (``--interval 1``,
``--heartbeat 1``) and delivers to a real rsyslog (TCP, RFC 5424) in its own
namespace.  Meanwhile, over and over, until the sensor has stopped:

* ``otwatch inventory``, ``otwatch inventory show ASSET``, ``otwatch alerts``
  and ``otwatch inventory runs`` run as separate processes;
* the TUI's read path (``sensor/tui/dbread.Reader``: ``changed``, ``snapshot``,
  ``alerts``, ``heartbeat``) polls in this process.

Every reader must succeed (exit 0, no traceback, never "database is locked"),
and every read must be consistent: each child row of a snapshot belongs to an
asset of the same snapshot, an asset's ``last_seen`` never goes back, outbox
sequence numbers only grow, and what the sensor reports at the end arrived at
the collector.  The readers must have overlapped the writes (they saw the
database in several states while the sensor ran).  The collector also gets
the asset-change records: every asset as ``asset.new``, and ``asset.quiet``
for each once the replay is over (``asset_quiet_after: 3`` in the config).
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
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

BAD = ("Traceback", "locked", "busy")
QUIET = 3
"""asset_quiet_after for the run: the replay's own pauses are shorter than the wait after it."""


class CliReaders(threading.Thread):
    """Runs the reading commands one after another until told to stop."""

    def __init__(self, db: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.db, self.stop = db, stop
        self.runs: list[tuple[list[str], int, str, str]] = []
        self.states: set[str] = set()        # distinct `otwatch inventory` outputs seen

    def _asset(self) -> str | None:
        try:
            c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
            try:
                r = c.execute("SELECT asset_id FROM assets ORDER BY asset_id LIMIT 1").fetchone()
            finally:
                c.close()
        except sqlite3.Error as exc:
            self.runs.append((["sqlite3 select"], 1, "", str(exc)))
            return None
        return r[0] if r else None

    def run(self) -> None:
        env = dict(os.environ, OTWATCH_DB=self.db, COLUMNS="200")
        while not self.stop.is_set():
            cmds = [["inventory"], ["alerts", "--status", "all"], ["inventory", "runs"]]
            aid = self._asset()
            if aid:
                cmds.append(["inventory", "show", aid])
            for cmd in cmds:
                r = subprocess.run([OTWATCH, *cmd, "--db", self.db], capture_output=True, text=True, env=env,
                                   timeout=120)
                self.runs.append((cmd, r.returncode, r.stdout, r.stderr))
                if cmd == ["inventory"]:
                    self.states.add(r.stdout)


class TuiReader(threading.Thread):
    """The TUI's read path, polled as the TUI's tick does, checking each read for consistency."""

    def __init__(self, db: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.db, self.stop = db, stop
        self.reads = 0
        self.problems: list[str] = []
        self.versions: set[tuple] = set()

    def run(self) -> None:
        from otwatch.sensor.tui.dbread import Reader

        last_seen: dict[str, float] = {}
        last_seq = 0
        try:
            rd = Reader(self.db)
        except Exception as exc:   # noqa: BLE001 - the test reports it
            self.problems.append(f"open: {exc!r}")
            return
        while not self.stop.is_set():
            try:
                rd.changed()
                snap = rd.snapshot()
                alerts = rd.alerts()
                hb = rd.heartbeat()
                seqs = [r[0] for r in rd.conn.execute("SELECT seq FROM outbox ORDER BY seq")]
            except Exception as exc:   # noqa: BLE001 - the test reports it
                self.problems.append(f"read {self.reads}: {exc!r}")
                time.sleep(0.05)
                continue
            self.reads += 1
            ids = {a["asset_id"] for a in snap["assets"]}
            for table, rows in snap.items():
                if table == "assets":
                    continue
                orphans = {r["asset_id"] for r in rows if "asset_id" in r and r["asset_id"] not in ids}
                if orphans:
                    self.problems.append(f"{table}: rows of assets not in the same snapshot: {sorted(orphans)[:3]}")
            for a in snap["assets"]:
                prev = last_seen.get(a["asset_id"])
                if prev is not None and (a["last_seen"] or 0) < prev:
                    self.problems.append(f"{a['asset_id']}: last_seen went back {prev} -> {a['last_seen']}")
                last_seen[a["asset_id"]] = a["last_seen"] or 0
            if seqs != sorted(set(seqs)) or (seqs and seqs[-1] < last_seq):
                self.problems.append(f"outbox seqs not increasing: {last_seq} then {seqs[-3:]}")
            last_seq = seqs[-1] if seqs else last_seq
            self.versions.add((len(snap["assets"]), len(alerts), last_seq, hb.get("packets")))
            time.sleep(0.02)
        rd.conn.close()


def test_readers_while_the_sensor_writes():
    work = tempfile.mkdtemp(prefix="otwatch-readers-")
    os.chmod(work, 0o777)
    v = VethPair()
    stop = threading.Event()
    try:
        v.ns(v.sensor_ns, "ip", "link", "set", "lo", "up")
        os.makedirs(os.path.join(work, "rs"))
        col = Collector(os.path.join(work, "rs"), "tcp", netns=v.sensor_ns)
        col.start()
        db = os.path.join(work, "s.db")
        err_path = os.path.join(work, "sensor.err")
        cfg = os.path.join(work, "sensor.yaml")
        with open(cfg, "w") as fh:
            fh.write(f"asset_quiet_after: {QUIET}\n")
        with open(err_path, "w") as err:
            proc = v.popen(v.sensor_ns, [OTWATCH, "sensor", "-i", v.sensor_if, "--db", db, "--user", "nobody",
                                         "--config", cfg,
                                         "--policy", POLICY, "--heartbeat", "1", "--interval", "1",
                                         "--syslog", f"tcp://127.0.0.1:{col.port}?format=rfc5424"],
                           stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, OTWATCH_DB=db))
            deadline = time.monotonic() + 30
            while "privileges:" not in open(err_path).read():
                assert proc.poll() is None and time.monotonic() < deadline, open(err_path).read()
                time.sleep(0.1)
            cli, tui = CliReaders(db, stop), TuiReader(db, stop)
            cli.start()
            tui.start()
            v.ns(v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if, "--multiplier", "4", DEMO)
            time.sleep(QUIET + 3)           # every asset falls quiet (seen at a heartbeat)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, open(err_path).read()
            stop.set()
            cli.join(180)
            tui.join(60)
        log = open(err_path).read()
        assert "Traceback" not in log and "not recorded" not in log, log

        print(f"cli runs {len(cli.runs)}, inventory states {len(cli.states)}, tui reads {tui.reads}, "
              f"tui states {len(tui.versions)}")
        failed = [(c, rc, e[-500:]) for c, rc, _o, e in cli.runs if rc != 0 or any(b in e for b in BAD)]
        assert not failed, failed
        assert tui.problems == [], tui.problems[:5]
        # the readers overlapped the writes: several states of the database were seen while the sensor ran
        assert len(cli.runs) >= 4 and len(cli.states) >= 2, (len(cli.runs), len(cli.states))
        assert tui.reads >= 10 and len(tui.versions) >= 3, (tui.reads, sorted(tui.versions, key=str)[:5])

        con = sqlite3.connect(db)
        stored = {r[0] for r in con.execute("SELECT id FROM alerts")}
        assets = {r[0] for r in con.execute("SELECT asset_id FROM assets")}
        con.close()
        assert stored and assets

        def sd(lines):
            return [parse_rfc5424(g)["sd"]["otwatch@32473"] for g in lines]

        def changes(lines, event):
            return {p["asset_id"] for p in sd(lines) if p["kind"] == "asset" and p.get("event") == event}

        lines = col.wait_for(lambda got: {p.get("alert_id") for p in sd(got)} >= stored
                             and changes(got, "asset.quiet") >= assets, timeout=30)
        assert stored <= {p.get("alert_id") for p in sd(lines)}
        # asset changes: every asset arrived as new, and went quiet once the replay was over
        assert changes(lines, "asset.new") == assets
        assert changes(lines, "asset.quiet") == assets
        last = {}
        for p in sd(lines):
            if p.get("event") in ("asset.quiet", "asset.back"):
                last[p["asset_id"]] = p["event"]
        assert set(last.values()) == {"asset.quiet"}
        col.stop()
    finally:
        stop.set()
        v.close()
        shutil.rmtree(work, ignore_errors=True)
