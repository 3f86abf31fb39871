"""A database another process holds: the wait is told, bounded, and ends in one clear line (exit 2).

A real second process takes ``BEGIN IMMEDIATE`` on the database and keeps it
until the test tells it to let go.  ``$OTWATCH_DB_NOTICE`` and
``$OTWATCH_DB_WAIT`` make the waits short; nothing here asserts a duration.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from support.dbholder import Holder
from support.minicaps import modbus_capture

OTWATCH = [sys.executable, "-m", "otwatch.sensor"]

@pytest.fixture
def held(tmp_path):
    cap = tmp_path / "c.pcap"
    modbus_capture(cap, 1, 2)
    db = tmp_path / "inv.db"
    env = dict(os.environ, OTWATCH_DB=str(db))
    r = subprocess.run(OTWATCH + ["analyze", "-q", str(cap)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    h = Holder(db)
    yield cap, db, h
    h.release()


def _env(db, wait, notice="0.2"):
    return dict(os.environ, OTWATCH_DB=str(db), OTWATCH_DB_WAIT=str(wait), OTWATCH_DB_NOTICE=notice)


def test_a_held_database_is_told_then_given_up_in_one_line_exit_2(held):
    cap, db, h = held
    r = subprocess.run(OTWATCH + ["analyze", "-q", str(cap)], env=_env(db, 2), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"otwatch: {db}: the database is busy, held by pid {h.pid} (")
    assert lines[0].endswith("; waiting up to 2 s ($OTWATCH_DB_WAIT)")
    assert lines[1].startswith(f"otwatch: {db}: the database is still held by pid {h.pid} (")
    assert lines[1].endswith("after 2 s of waiting; gave up (try again when it is done, or set $OTWATCH_DB_WAIT "
                             "to wait longer)")
    h.release()
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT status FROM runs ORDER BY run_id")] == ["completed"]
    con.close()


def test_a_wait_that_ends_goes_on_and_completes(held):
    cap, db, h = held
    p = subprocess.Popen(OTWATCH + ["analyze", "-q", str(cap)], env=_env(db, 600), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stderr.readline()        # the notice: told while the wait goes on
    assert first.startswith(f"otwatch: {db}: the database is busy, held by pid {h.pid} ("), first
    assert first.rstrip().endswith("waiting up to 600 s ($OTWATCH_DB_WAIT)")
    h.release()
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert err == ""                   # told once
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT status FROM runs ORDER BY run_id")] == ["completed", "completed"]
    assert con.execute("SELECT sum(packets_sent) FROM assets").fetchone()[0] == 2 * 4 * 2
    con.close()


def test_a_wait_that_gives_up_mid_run_says_so_once_and_does_not_wait_again(tmp_path):
    """The lock is taken after the run started (its row written): a batch gives up, one line and exit 2;
    marking the run 'error' is tried without a second full wait (the row stays 'running', shown killed)."""
    cap = tmp_path / "c.pcap"
    modbus_capture(cap, 2, 3)
    db = tmp_path / "inv.db"
    p = subprocess.Popen(OTWATCH + ["analyze", "-q", "--interval", "0.01", "-"], env=_env(db, 1),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while True:                        # until the run is recorded (not a timed assertion)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            if con.execute("SELECT count(*) FROM runs").fetchone()[0]:
                con.close()
                break
            con.close()
        except sqlite3.OperationalError:
            pass
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    h = Holder(db)
    try:
        out, err = p.communicate(cap.read_bytes(), timeout=300)
    finally:
        h.release()
    err = err.decode()
    assert p.returncode == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"otwatch: {db}: the database is busy, held by pid {h.pid} (")
    assert lines[1].startswith(f"otwatch: {db}: the database is still held by pid {h.pid} (")
    assert lines[1].endswith("gave up (try again when it is done, or set $OTWATCH_DB_WAIT to wait longer)")
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT status FROM runs")] == ["running"]
    con.close()
