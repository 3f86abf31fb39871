"""The outbox refused: a full disk, a database another process holds.  A clear error from the
outbox, a held and counted skip in the feeds that write to it from the capture side.

A real full file system (a 4 MiB tmpfs the test mounts, filled with a file),
not a simulated error: ``Outbox.append_many`` raises ``StoreError`` with one
line ("the disk is full"); the alert and asset feeds (``sinks.pending``) keep
their records, count the refusal and log it once, and deliver everything in
order once space is back; past their bound they drop the oldest, count them,
and the next append carries a ``loss`` record.  Another process that holds the
write lock longer than the sensor waits (``CAPTURE_APPEND_WAIT``) is the same: held, counted, delivered when it lets go.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys

import pytest

from otwatch.sensor.sinks.outbox import CAPTURE_APPEND_WAIT, Outbox
from otwatch.sensor.sinks.pending import Pending
from otwatch.sensor.store import StoreError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def _fill(path) -> None:
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def _records(n, start=0):
    return [("alert", f"a{i}", "medium", float(i), {"message": "x" * 2000, "i": i}) for i in range(start, start + n)]


@needs_root
def test_full_disk_is_one_line_error_then_records_wait_and_go(small_disk, caplog):
    db = str(small_disk / "otwatch.db")
    ob = Outbox(db)
    ob.append_many(_records(5))
    _fill(small_disk / "filler")
    with pytest.raises(StoreError) as exc:
        for i in range(100):                       # the WAL has some room left in its pages
            ob.append_many(_records(50, 1000 + i * 50))
    assert str(exc.value) == f"{db}: the disk is full"
    kept = [r.id for r in ob.after(0, 100_000)]    # a refused batch left nothing half-written
    assert len(kept) % 50 == 5

    feed = Pending(ob, "alert")
    caplog.set_level(logging.WARNING, logger="otwatch.sinks")
    for i in range(3):
        feed.add(_records(10, 10_000 + i * 10))
        assert feed.flush() == 0
    assert feed.counts["refused"] == 3 and len(feed.items) == 30
    warned = [r for r in caplog.records if "not recorded in the outbox yet" in r.getMessage()]
    assert len(warned) == 1 and "the disk is full" in warned[0].getMessage()

    os.remove(small_disk / "filler")
    assert feed.flush() == 30 and feed.items == [] and feed.counts["records"] == 30
    ids = [r.id for r in ob.after(0, 100_000)]
    assert ids[-30:] == [f"a{i}" for i in range(10_000, 10_030)]


@needs_root
def test_held_records_past_the_bound_become_a_loss_record(small_disk):
    db = str(small_disk / "otwatch.db")
    ob = Outbox(db)
    _fill(small_disk / "filler")
    feed = Pending(ob, "asset change", max_pending=20)
    for i in range(5):
        feed.add([("asset", f"c{i}-{j}", "info", 0.0, {"message": "y" * 4000}) for j in range(10)])
        feed.flush()
    assert feed.counts["lost"] == 30 and len(feed.items) == 20
    os.remove(small_disk / "filler")
    assert feed.flush() == 21
    recs = ob.after(0, 1000)
    assert [r.id for r in recs[:20]] == [f"c{i}-{j}" for i in (3, 4) for j in range(10)]
    loss = recs[-1]
    assert loss.kind == "loss" and loss.severity == "high" and loss.body["dropped"] == 30
    assert "30 asset change records not recorded" in loss.body["message"]


HOLDER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO outbox_cursors (dest, seq, delivered, updated) VALUES ('holder', 0, 0, 0)")
print("holding", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
"""


def test_a_lock_another_process_holds_is_a_held_skip(tmp_path, caplog):
    db = str(tmp_path / "otwatch.db")
    ob = Outbox(db, append_wait=CAPTURE_APPEND_WAIT)
    feed = Pending(ob, "alert")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        caplog.set_level(logging.WARNING, logger="otwatch.sinks")
        feed.add(_records(3))
        assert feed.flush() == 0 and feed.counts["refused"] == 1 and len(feed.items) == 3
        msg = [r.getMessage() for r in caplog.records]
        assert any(f"is still held by pid {holder.pid} (" in m and f"after {CAPTURE_APPEND_WAIT:.0f} s" in m
                   for m in msg), msg
        with pytest.raises(StoreError):
            ob.append("heartbeat", "hb", "info", 0.0, {})
    finally:
        holder.communicate("go\n", timeout=30)
    assert feed.flush() == 3
    assert [r.id for r in ob.after(0)] == ["a0", "a1", "a2"]
    c = sqlite3.connect(db)
    assert c.execute("SELECT dest FROM outbox_cursors").fetchall() == [("holder",)]
    c.close()
