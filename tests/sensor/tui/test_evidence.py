"""The Alerts screen's evidence pcap (``e``), end to end on the demo plant.

An alert is opened and ``e`` pressed, as an operator would; the pcap written
is then read back with dpkt and tshark and compared with the source capture
read independently (dpkt, tshark): its packets are the alert's evidence frames
and the packets of their flows within ``CONTEXT_FRAMES`` (at most
``MAX_PACKETS`` of those), in frame order, with the very bytes, lengths and
timestamps of the source's frames (sensor/alerts/evidence.py's contract).  The
path is shown (notification and the alert's detail).  Hostile severities,
rules and ids from a database cannot put a file outside the output folder, a
link planted there is not written through, and a folder that cannot be
written gives a message, not a traceback.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import dpkt
import pytest

from otwatch.sensor.alerts import evidence as EV
from otwatch.sensor.tui.alerts import AlertDetail
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.model import DbModel

HERE = pathlib.Path(__file__).parent
_spec = importlib.util.spec_from_file_location("tui_conftest", HERE / "conftest.py")
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)
_spec = importlib.util.spec_from_file_location("tui_hostile", HERE / "test_hostile.py")
HOSTILE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(HOSTILE)

SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*\.pcap$")


# ------------------------------------------------------------------ the source, read independently
def _source() -> list[tuple[float, bytes]]:
    """(ts, bytes) of every frame of the demo capture, index = Wireshark's frame number - 1 (dpkt)."""
    with open(H.DEMO, "rb") as f:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]


SOURCE = _source()


def _flow(buf: bytes):
    """(IP protocol, endpoints sorted) of an Ethernet frame, by dpkt; None when not IP."""
    ip = dpkt.ethernet.Ethernet(buf).data
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return None
    sp = dp = 0
    if isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        sp, dp = ip.data.sport, ip.data.dport
    a, b = (bytes(ip.src), sp), (bytes(ip.dst), dp)
    return (ip.p,) + ((a, b) if a <= b else (b, a))


def expected_frames(alert) -> list[int]:
    """Frame numbers the alert's pcap must hold, in order: its evidence frames, and the frames of their
    flows within CONTEXT_FRAMES of an evidence frame (the first MAX_PACKETS of them)."""
    ev = sorted({e.frame for e in alert.evidence})
    flows = {_flow(SOURCE[f - 1][1]) for f in ev} - {None}
    out, extra = [], 0
    for n, (_ts, buf) in enumerate(SOURCE, 1):
        if n in ev:
            out.append(n)
        elif any(abs(n - e) <= EV.CONTEXT_FRAMES for e in ev) and _flow(buf) in flows and extra < EV.MAX_PACKETS:
            extra += 1
            out.append(n)
    return out


def read_pcap(path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        rd = dpkt.pcap.Reader(f)
        assert rd.datalink() == dpkt.pcap.DLT_EN10MB
        return [(ts, bytes(buf)) for ts, buf in rd]


def tshark_times(path, frames: list[int] | None = None) -> list[tuple[str, str, str]]:
    """(epoch time, length on the wire, captured length) of each frame, as tshark reads them."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len",
           "-e", "frame.cap_len"]
    if frames is not None:
        cmd[4:4] = ["-Y", "frame.number in {" + ", ".join(map(str, frames)) + "}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return [tuple(line.split("\t")) for line in r.stdout.splitlines()]


def check_pcap(path, alert) -> int:
    """The written file holds exactly the expected frames of the source: same bytes, same timestamps."""
    want = expected_frames(alert)
    got = read_pcap(path)
    assert len(got) == len(want), (len(got), len(want))
    for (ts, buf), n in zip(got, want):
        src_ts, src_buf = SOURCE[n - 1]
        assert buf == src_buf, f"frame {n}: bytes differ"
        assert round(ts * 1e6) == round(src_ts * 1e6), f"frame {n}: time {ts!r} != {src_ts!r}"
    for e in alert.evidence:                       # every evidence frame is in it
        assert SOURCE[e.frame - 1] in got
    return len(want)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


def detail_text(app) -> str:
    return app.screen.query_one("#detail-body").render().plain


async def _export(app, pilot) -> None:
    await pilot.press("e")
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)


# ------------------------------------------------------------------ the demo plant, through the UI
async def test_e_in_an_alert_writes_its_evidence_frames_and_says_where(demo_model, tmp_path, monkeypatch):
    out = tmp_path / "evidence"
    monkeypatch.setenv("OTWATCH_EVIDENCE_DIR", str(out))
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await H.wait_done(pilot, m)
        await pilot.press("4")
        pane = app.pane("alerts")
        # the alert with the most evidence frames (the rogue's port scan or function sweep)
        aid = max(m.alerts, key=lambda k: (len(m.alerts[k].evidence), k))
        alert = m.alerts[aid]
        assert len(alert.evidence) > 5
        pane.table.move_cursor(row=pane.table.get_row_index(aid))
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, AlertDetail) and app.screen.aid == aid
        await _export(app, pilot)
        files = sorted(out.iterdir())
        assert [f.name for f in files] == [EV._name(alert)]
        n = check_pcap(files[0], alert)
        assert n > len({e.frame for e in alert.evidence})        # the flows' other packets too
        # the path is shown: in a notification and, for good, in the detail (one line on screen)
        msg = f"evidence pcap: {n} packets written to {files[0]}"
        assert notices(app) == [msg]
        assert msg in detail_text(app)
        from textual.widgets._toast import Toast

        assert [str(t.render()) for t in app.screen.query(Toast)] == [msg]
        if shutil.which("tshark"):
            src = tshark_times(H.DEMO, expected_frames(alert))
            assert tshark_times(files[0]) == src and len(src) == n
        # every other alert from the list: each file holds exactly its frames
        await pilot.press("escape")
        done = {aid}
        for k, a in m.alerts.items():
            if k in done or not a.evidence:
                continue
            pane.table.move_cursor(row=pane.table.get_row_index(k))
            await _export(app, pilot)
            path = out / EV._name(a)
            assert path.exists(), (a.rule, notices(app)[-1])
            check_pcap(path, a)
            assert notices(app)[-1].endswith(f"written to {path}")
            done.add(k)
        # every alert of the demo plant with its policy: 30 (38 before the configuration posture findings became
        # inventory-only findings; 29 before the rogue's writes raised command.modbus_rogue_writer)
        assert len(done) == len(list(out.iterdir())) == 30
        assert all(SAFE_NAME.match(p.name) for p in out.iterdir())


def test_the_path_is_shown_relative_to_the_working_directory(tmp_path, monkeypatch):
    from otwatch.sensor.tui import alertsrc

    monkeypatch.chdir(tmp_path)
    assert alertsrc.shown_path(str(tmp_path / "evidence" / "x.pcap")) == os.path.join("evidence", "x.pcap")
    assert alertsrc.shown_path("/elsewhere/x.pcap") == "/elsewhere/x.pcap"


# ------------------------------------------------------------------ hostile names from a database
HOSTILE_ALERTS = [  # (id, severity, rule): what a database written by another program may hold
    ("../../../../../../tmp/escape-id", "high", "policy.flow_denied"),
    ("0123456789ab0001", "../../../../escape-sev", "policy.flow_denied"),
    ("0123456789ab0002", "high", "../../../../escape-rule"),
    ("0123456789ab0003", "{abs}", "/etc/passwd"),     # an absolute path (into the test's folder, made below)
    ("..", "..", ".."),
    ("0123456789ab0005", ".hidden", "x\x1b]52;c;aGk=\x07\u202e[@click=app.quit]" + "R" * 10_000),
]


def _hostile_db(path: pathlib.Path, abs_dir: pathlib.Path) -> None:
    from otwatch.sensor.inventory.store import connect

    db = connect(str(path))
    if "alerts" not in db.table_names():
        db["alerts"].create(HOSTILE.ALERT_COLUMNS, pk="id")
    ts, _ = SOURCE[3699]
    for i, (aid, sev, rule) in enumerate(HOSTILE_ALERTS):
        db["alerts"].insert({"id": aid, "rule": rule, "severity": sev.replace("{abs}", f"{abs_dir}/"), "category": "policy", "message": "m",
                             "src": "10.10.0.66", "dst": "10.10.0.50", "src_asset": "", "dst_asset": "",
                             "src_zone": "", "dst_zone": "", "protocol": "mqtt", "port": 1883, "technique": "",
                             "first_ts": ts, "last_ts": ts + i, "count": 1,
                             "evidence": json.dumps([[str(H.DEMO), 3700, ts, 0]]), "details": "{}",
                             "status": "open", "close_reason": "", "status_at": "", "status_note": "",
                             "reopened": 0})
    db.conn.commit()
    db.close()


def _tree(root: pathlib.Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_hostile_names_stay_in_the_folder_and_links_are_not_followed(tmp_path, monkeypatch):
    dbp = tmp_path / "hostile.db"
    box = tmp_path / "box"              # a name that escaped would land in tmp_path, where the test looks
    out = box / "a" / "b" / "evidence"
    out.mkdir(parents=True)
    (tmp_path / "abs").mkdir()
    _hostile_db(dbp, tmp_path / "abs")
    monkeypatch.setenv("OTWATCH_EVIDENCE_DIR", str(out))
    m = DbModel(str(dbp))
    assert len(m.alerts) == len(HOSTILE_ALERTS)
    # a link planted under the name one alert's file will get, pointing outside the folder
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = next(a for a in m.alerts.values() if a.rule == "policy.flow_denied" and a.severity == "high")
    link = pathlib.Path(EV.out_path(str(out), planted))
    link.symlink_to(victim)
    before = _tree(tmp_path)
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.pause(0.3)
        await pilot.press("4")
        pane = app.pane("alerts")
        for aid in list(m.alerts):
            pane.table.move_cursor(row=pane.table.get_row_index(aid))
            await _export(app, pilot)
            assert notices(app)[-1].startswith("evidence pcap: 33 packets written to "), notices(app)[-1]
        assert app.is_running
    written = sorted(out.iterdir())
    assert len(written) == len(HOSTILE_ALERTS)                  # one each, none lost to a name collision
    assert all(SAFE_NAME.match(p.name) for p in written), [p.name for p in written]
    assert _tree(tmp_path) - before == {str(p.relative_to(tmp_path)) for p in written} - before
    assert victim.read_text() == "keep me"                       # not written through the link
    assert not link.is_symlink() and read_pcap(link) == read_pcap(written[0])
    for p in written:
        assert SOURCE[3699] in read_pcap(p)                      # the evidence frame, read from the capture


# ------------------------------------------------------------------ a folder that cannot be written
DRIVER = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
import conftest as H
from otwatch.sensor.tui.app import OtwatchApp
from otwatch.sensor.tui.feed import ReplayFeed
from otwatch.sensor.tui.model import LiveModel

async def main():
    m = LiveModel(ReplayFeed(H.DEMO_REL, 0.0), str(H.POLICY), source=H.DEMO_REL)
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await H.wait_done(pilot, m)
        await pilot.press("4", "enter", "e")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        out = {"notices": [n.message for n in app._notifications],
               "detail": app.screen.query_one("#detail-body").render().plain,
               "screen": H.screen_text(app), "running": app.is_running}
    print(json.dumps(out))

asyncio.run(main())
"""


def _read_only(cmd: list[str], folder: pathlib.Path) -> list[str]:
    """*cmd* run with *folder* read-only: a read-only bind mount in its own mount namespace as root (root
    ignores modes), else mode 555 (set by the caller)."""
    if os.geteuid() == 0:
        return ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)] + cmd
    return cmd


def test_a_read_only_folder_is_a_message_not_a_traceback(tmp_path):
    if os.geteuid() == 0 and not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) to make a read-only mount as root")
    folder = tmp_path / "evidence"
    folder.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = dict(os.environ, OTWATCH_EVIDENCE_DIR=str(folder))
    if os.geteuid() != 0:
        folder.chmod(0o555)
    try:
        r = subprocess.run(_read_only([sys.executable, str(script), "-", str(HERE)], folder), cwd=H.ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    finally:
        folder.chmod(0o755)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    why = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    (msg,) = got["notices"]
    assert msg.startswith(f"evidence not written: cannot write {folder}/") and msg.endswith(f".pcap: {why}"), msg
    assert msg in got["detail"] and got["running"]
    assert "evidence not written" in got["screen"]
    assert list(folder.iterdir()) == []


async def test_a_folder_that_cannot_be_made_is_a_message(demo_model, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("OTWATCH_EVIDENCE_DIR", str(tmp_path / "file" / "evidence"))
    m = demo_model()
    app = OtwatchApp(m)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await H.wait_done(pilot, m)
        await pilot.press("4", "enter")
        await _export(app, pilot)
        (msg,) = notices(app)
        assert msg == f"evidence not written: {tmp_path / 'file' / 'evidence'}: Not a directory"
        assert msg in detail_text(app) and app.is_running


async def test_hostile_evidence_sources_are_shown_inert(tmp_path, monkeypatch):
    """test_hostile.py's database: every alert's evidence names a hostile 'capture' (escape sequences,
    bidi, markup, 10,000 characters); `e` says why nothing was written, through safe.clean."""
    path = tmp_path / "hostile.db"
    HOSTILE.make_db(path)
    out = tmp_path / "evidence"
    monkeypatch.setenv("OTWATCH_EVIDENCE_DIR", str(out))
    m = DbModel(str(path))
    app = OtwatchApp(m)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.pause(0.3)
        await pilot.press("4")
        pane = app.pane("alerts")
        for aid in list(m.alerts):
            pane.table.move_cursor(row=pane.table.get_row_index(aid))
            await _export(app, pilot)
            msg = notices(app)[-1]
            assert msg.startswith("evidence not written: ") and "not a capture file that can be read again" in msg
            for bad in ("\x1b", "\x07", "\x9b", "\u202e", "\u200b", "\r"):
                assert bad not in msg, repr(bad)
            HOSTILE.check_screen(app)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "evidence not written" in detail_text(app)
        HOSTILE.check_screen(app)
        assert app.is_running
    assert not out.exists() or list(out.iterdir()) == []
