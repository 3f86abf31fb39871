"""The live sensor on one end of a veth pair, the demo plant replayed into the other with tcpreplay.

Checks that the sensor saw every packet, produced the same observations and
inventory as ``otwatch analyze`` on the same capture, never transmitted on the
monitored interface, ran without root once the capture was open, and stopped
cleanly on SIGTERM.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from support.veth import VethPair, available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
OTWATCH = os.path.join(os.path.dirname(sys.executable), "otwatch")

why = available() or (None if shutil.which("tcpreplay") else "tcpreplay missing (tests/run.sh installs it)")
pytestmark = [pytest.mark.netns, pytest.mark.skipif(why is not None, reason=why or "")]


def _frames(path: str) -> int:
    import dpkt

    with open(path, "rb") as fh:
        return sum(1 for _ in dpkt.pcap.Reader(fh))


def _obs(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# fields that are times or durations: the replay has its own clock
_TIME = {"ts", "first_ts", "last_ts", "start_ts", "end_ts", "response_time"}


def _strip(v):
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if k not in _TIME}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def _comparable(rows: list[dict]) -> list:
    out = []
    for r in rows:
        if r["type"] in ("aggregate", "interval.end", "host.traffic", "flow.end"):
            continue     # per interval of packet time, or at eviction: depend on the replay's timing
        if r["type"] == "source.start":
            continue     # names the source: the file for analyze, iface:<name> live (compared in the test)
        out.append(json.dumps(_strip(r), sort_keys=True))
    return out


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="otwatch-veth-")
    os.chmod(d, 0o777)                     # the sensor writes here after becoming `nobody`
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("capture", ["libpcap", "afpacket"])
def test_sensor_matches_analyze_and_never_transmits(workdir, capture):
    v = VethPair()
    try:
        before = v.counters("sensor")
        sdb, sjson = os.path.join(workdir, "sensor.db"), os.path.join(workdir, "sensor.jsonl")
        err = open(os.path.join(workdir, "sensor.err"), "w+")
        env = dict(os.environ, OTWATCH_DB=sdb)
        if capture == "afpacket":
            env["OTWATCH_NO_LIBPCAP"] = "1"
        proc = v.popen(v.sensor_ns, [OTWATCH, "sensor", "-i", v.sensor_if, "--db", sdb, "--json", sjson,
                                     "--user", "nobody", "--heartbeat", "1", "--interval", "60"],
                       stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + 30
        while "privileges:" not in open(err.name).read():
            assert proc.poll() is None, open(err.name).read()
            assert time.monotonic() < deadline, open(err.name).read()
            time.sleep(0.1)
        v.ns(v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if, "--pps", "5000", DEMO)
        n = _frames(DEMO)
        deadline = time.monotonic() + 30
        while v.counters("sensor")["rx_packets"] - before["rx_packets"] < n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)                    # one more hand-over and heartbeat
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, open(err.name).read()
        after = v.counters("sensor")
        log = open(err.name).read()
    finally:
        v.close()

    # passive: not one packet left the sensor's interface
    assert after["tx_packets"] == before["tx_packets"] and after["tx_bytes"] == before["tx_bytes"]
    assert ("libpcap version" in log) == (capture == "libpcap"), log
    assert "now user nobody" in log and f"stopped after {n} packets (0 dropped" in log, log

    adb, ajson = os.path.join(workdir, "analyze.db"), os.path.join(workdir, "analyze.jsonl")
    subprocess.run([OTWATCH, "analyze", "-q", DEMO, "--db", adb, "--json", ajson], check=True,
                   env=dict(os.environ, OTWATCH_DB=adb))
    live, offline = _obs(sjson), _obs(ajson)
    assert [(r["source"], r["kind"]) for r in live if r["type"] == "source.start"] == [("iface:vs", "interface")]
    assert [(r["source"], r["kind"]) for r in offline if r["type"] == "source.start"] == [(DEMO, "file")]
    assert sum(1 for r in live if r["type"] == "message") > 100
    a, b = sorted(_comparable(live)), sorted(_comparable(offline))
    assert [x for x in a if x not in b] == [] and [x for x in b if x not in a] == []
    assert a == b

    def inventory(path):
        c = sqlite3.connect(path)
        try:
            assets = sorted(c.execute("SELECT asset_id, ip, device_class FROM assets").fetchall())
            roles = sorted(c.execute("SELECT asset_id, role, protocol FROM roles").fetchall())
            idents = sorted(c.execute("SELECT asset_id, protocol, attribute, value, frame FROM identity").fetchall())
            return assets, roles, idents
        finally:
            c.close()

    assert inventory(sdb) == inventory(adb)
    c = sqlite3.connect(sdb)
    beats = c.execute("SELECT body FROM outbox WHERE kind = 'heartbeat'").fetchall()
    c.close()
    assert beats and json.loads(beats[-1][0])["packets"] == n
    assert os.stat(sdb).st_uid == 65534        # the database was created after root was given up


def test_bad_interface_and_config_are_one_line_errors(tmp_path):
    r = subprocess.run([OTWATCH, "sensor", "-i", "no-such-if0", "--user", "nobody", "--db", str(tmp_path / "x.db")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no-such-if0" in r.stderr
    assert "Traceback" not in r.stderr
    cfg = tmp_path / "sensor.yaml"
    cfg.write_text("interface: eth0\nheartbeat: fast\nsyslog:\n  - ftp://x\nbogus: 1\ninterface: eth1\n")
    r = subprocess.run([OTWATCH, "sensor", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert any(f"{cfg}:2:12: heartbeat must be a number" in ln for ln in lines), lines
    assert any(f"{cfg}:4:5: ftp://x: scheme must be one of" in ln for ln in lines), lines
    assert any(f"{cfg}:5:1: unknown key 'bogus'" in ln for ln in lines), lines
    assert any(f"{cfg}:6:1: duplicate key 'interface'" in ln for ln in lines), lines
