"""A run that fails is recorded as failed: 'error' with the reason, never left 'running'.

Real failures, not injected ones: a gzip capture whose compressed stream is
damaged in the middle (zlib refuses it after the header was read fine), and
the JSON lines output on a disk that fills up mid-run (a 128 KiB tmpfs the test
mounts).  Each is one line on stderr, exit status 2, no traceback, and the run
row says 'error' with the reason.
"""
from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
OTWATCH = os.path.join(os.path.dirname(sys.executable), "otwatch")


def _runs(db: str) -> list[tuple]:
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT status, error, sources FROM runs ORDER BY run_id").fetchall()
    finally:
        c.close()


def _analyze(*args, db):
    return subprocess.run([OTWATCH, "analyze", "-q", *args, "--db", db], capture_output=True, text=True,
                          env=dict(os.environ, OTWATCH_DB=db))


def test_damaged_gzip_stream_is_an_error_run(tmp_path):
    data = bytearray(gzip.compress(open(DEMO, "rb").read()))
    data[5000:5100] = b"\xff" * 100                # deflate blocks broken; header and first blocks intact
    bad = tmp_path / "damaged.pcap.gz"
    bad.write_bytes(bytes(data))
    db = str(tmp_path / "x.db")
    r = _analyze(str(bad), db=db)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "compressed stream is damaged" in r.stderr, r.stderr
    (status, error, sources), = _runs(db)
    assert status == "error" and "compressed stream is damaged" in error and str(bad) in sources


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_output_disk_full_mid_run_is_an_error_run(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(small)], check=True)
    try:
        db = str(tmp_path / "x.db")
        r = _analyze(DEMO, "-o", str(small / "obs.jsonl"), db=db)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "No space left on device" in r.stderr, r.stderr
    (status, error, _),  = _runs(db)
    assert status == "error" and "No space left on device" in error
