"""The shared database: several writers and readers at once, read-only media, runs and Ctrl-C.

Everything runs the real ``otwatch`` command in subprocesses, as a user would.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from support.minicaps import modbus_capture

OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
WRITERS = 6
PAIRS = 12            # client/server pairs per writer's capture


def _run(args, db, **kw):
    env = dict(os.environ, OTWATCH_DB=str(db))
    return subprocess.run(OTWATCH + args, env=env, capture_output=True, text=True, **kw)


def _start(args, db):
    env = dict(os.environ, OTWATCH_DB=str(db))
    return subprocess.Popen(OTWATCH + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _no_traceback(p_or_result, out, err):
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]


@pytest.mark.parametrize("fresh", [True, False], ids=["new-database", "existing-database"])
def test_writers_and_readers_at_once_every_row_arrives(tmp_path, fresh):
    db = tmp_path / "shared.db"
    caps, expected = [], set()
    for w in range(WRITERS):
        cap = tmp_path / f"w{w}.pcap"
        expected |= modbus_capture(cap, w)
        caps.append(cap)
    if not fresh:      # an inventory exists: readers can start with the writers
        seed = tmp_path / "seed.pcap"
        expected |= modbus_capture(seed, 99, 2)
        r = _run(["analyze", "-q", str(seed)], db)
        assert r.returncode == 0, r.stderr
    writers = [_start(["analyze", "-q", "--interval", "0.01", str(c)], db) for c in caps]
    readers = []
    if not fresh:
        for _ in range(3):
            readers.append(_start(["inventory"], db))
            readers.append(_start(["inventory", "export", "--format", "json"], db))
    outs = [(p, *p.communicate(timeout=600)) for p in writers + readers]
    for p, out, err in outs:
        _no_traceback(p, out, err)
        assert p.returncode == 0, (p.args, err)
    con = sqlite3.connect(db)
    assets = {r[0] for r in con.execute("select asset_id from assets")}
    assert expected <= assets, sorted(expected - assets)[:5]
    services = con.execute("select count(*) from services where protocol = 'modbus' and port = 502").fetchone()[0]
    assert services == len([a for a in expected if a.endswith(":02")])
    runs = con.execute("select status, packets, sources from runs").fetchall()
    assert len(runs) == WRITERS + (0 if fresh else 1)
    assert {s for s, _, _ in runs} == {"completed"}
    by_source = {json.loads(src)[0]: n for _, n, src in runs}
    for c in caps:
        assert by_source[str(c)] == 4 * PAIRS
    migrations = con.execute("select migration_set, name, count(*) from _sqlite_migrations group by 1, 2").fetchall()
    assert all(n == 1 for _, _, n in migrations), migrations


# ----------------------------------------------------------------------------------- read-only media

def _readonly(cmd: list[str], folder) -> list[str]:
    """*cmd* run with *folder* read-only: a read-only bind mount when root (root ignores modes), else mode 555."""
    if os.geteuid() == 0:
        script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, str(folder)] + cmd
    return cmd


@pytest.fixture
def ro_folder(tmp_path):
    if os.geteuid() == 0 and not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) to make a read-only mount as root")
    folder = tmp_path / "media"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def _ro_run(args, folder, db):
    env = dict(os.environ, OTWATCH_DB=str(db))
    if os.geteuid() != 0:
        folder.chmod(0o555)
    try:
        return subprocess.run(_readonly(OTWATCH + args, folder), env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        folder.chmod(0o755)


def test_read_only_database_reads_and_refuses_writes_in_one_line(tmp_path, ro_folder):
    cap = tmp_path / "c.pcap"
    ids = modbus_capture(cap, 1, 2)
    db = ro_folder / "inventory.db"
    r = _run(["analyze", "-q", str(cap)], db)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in ro_folder.iterdir()) == ["inventory.db"]   # WAL files gone after close
    r = _ro_run(["inventory"], ro_folder, db)
    assert r.returncode == 0, r.stderr
    assert all(i in r.stdout for i in ids)
    r = _ro_run(["inventory", "show", sorted(ids)[0]], ro_folder, db)
    assert r.returncode == 0, r.stderr
    r = _ro_run(["analyze", "-q", str(cap)], ro_folder, db)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otwatch: ") and "read-only" in lines[0], r.stderr
    assert lines[0].count(str(db)) == 1
    r = _ro_run(["analyze", "-q", str(cap)], ro_folder, ro_folder / "sub" / "new.db")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_database_for_a_reader_is_one_line_exit_2(tmp_path):
    r = _run(["inventory"], tmp_path / "none" / "x.db")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"otwatch: no inventory at {tmp_path / 'none' / 'x.db'} "
                                             "(run `otwatch analyze CAPTURE` first, or give --db PATH)"]
    assert not (tmp_path / "none").exists()      # a reader creates nothing


# ----------------------------------------------------------------------------------- runs and Ctrl-C

@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_exits_130_and_marks_the_run_interrupted(tmp_path, sig, code):
    cap = tmp_path / "c.pcap"
    modbus_capture(cap, 3, 4)
    data = cap.read_bytes()
    db = tmp_path / "inv.db"
    env = dict(os.environ, OTWATCH_DB=str(db))
    p = subprocess.Popen(OTWATCH + ["analyze", "-q", "-"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(data)          # the whole capture, but the pipe stays open: analyze waits for more
    p.stdin.flush()
    deadline = time.monotonic() + 120
    while True:                  # wait (not a timed assertion) until the run is recorded
        try:
            if sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("select count(*) from runs").fetchone()[0]:
                break
        except sqlite3.OperationalError:
            pass
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    err = err.decode()
    assert p.returncode == code, err
    assert "Traceback" not in err and "Aborted" not in err
    assert err.strip().splitlines()[-1].startswith("otwatch: interrupted after ")
    con = sqlite3.connect(db)
    status, sources, ended = con.execute("select status, sources, ended from runs").fetchone()
    assert status == "interrupted" and json.loads(sources) == ["stdin"] and ended
    r = _run(["inventory"], db)
    assert r.returncode == 0 and "interrupted" in r.stderr, r.stdout + r.stderr
    r = _run(["inventory", "runs"], db)
    assert r.returncode == 0 and "interrupted" in r.stdout


def test_completed_run_recorded_with_packets_and_sources(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    modbus_capture(a, 4, 1)
    modbus_capture(b, 5, 2)
    db = tmp_path / "inv.db"
    r = _run(["analyze", "-q", str(a), str(b)], db)
    assert r.returncode == 0, r.stderr
    row = sqlite3.connect(db).execute("select status, packets, sources, first_ts, last_ts from runs").fetchone()
    assert row[0] == "completed" and row[1] == 12 and json.loads(row[2]) == [str(a), str(b)]
    assert row[3] == pytest.approx(1_700_004_000.01) and row[4] > row[3]


def test_no_inventory_records_no_run_and_creates_no_database(tmp_path):
    cap = tmp_path / "c.pcap"
    modbus_capture(cap, 6, 1)
    r = _run(["analyze", "-q", "--no-inventory", str(cap)], tmp_path / "db" / "x.db")
    assert r.returncode == 0 and not (tmp_path / "db").exists()
