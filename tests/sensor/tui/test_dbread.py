"""The TUI's database reader is the shared store's (``sensor.store.open_read``): read-only, never creates,
works on read-only media; its writes (acknowledge) never freeze on another process's lock."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from otwatch.sensor.tui import alertsrc
from otwatch.sensor.tui.dbread import Reader
from support.dbholder import Holder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
OTWATCH = [sys.executable, "-m", "otwatch.sensor"]

READ = ("import sys; from otwatch.sensor.tui.dbread import Reader; r = Reader(sys.argv[1]); "
        "print(len(r.snapshot()['assets']), len(r.alerts()))")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "media" / "inv.db"
    r = subprocess.run(OTWATCH + ["analyze", "-q", "--db", str(path), DEMO], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return path


def test_a_missing_database_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        Reader(str(tmp_path / "none" / "x.db"))
    assert not (tmp_path / "none").exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="a read-only bind mount needs root")
def test_reads_a_database_on_read_only_media(db):
    folder = str(db.parent)
    assert sorted(os.listdir(folder)) == ["inv.db"]     # no -wal/-shm: SQLite cannot make its index there
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, folder, sys.executable, "-c", READ, str(db)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = subprocess.run([sys.executable, "-c", READ, str(db)], capture_output=True, text=True)
    assert want.returncode == 0, want.stderr
    assert r.stdout == want.stdout and int(r.stdout.split()[0]) > 0


def test_acknowledge_on_a_held_database_says_so(db, monkeypatch):
    monkeypatch.setattr(alertsrc, "WRITE_WAIT", 0.3, raising=False)
    aid = Reader(str(db)).alerts()[0].id
    with Holder(db) as h:
        msg = alertsrc.acknowledge(str(db), aid)
        assert msg.startswith("not acknowledged (") and f"held by pid {h.pid} (" in msg, msg
    assert alertsrc.acknowledge(str(db), aid) == "acknowledged"
