"""The JSON lines file destination: every record once, in order, rotated by size, resumed by cursor."""
from __future__ import annotations

import glob
import json
import time

import pytest

from otwatch.sensor.sinks.deliver import Deliverer
from otwatch.sensor.sinks.outbox import Outbox
from otwatch.sensor.sinks.syslog import DestinationError, parse


def _wait(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_all(base: str) -> list[dict]:
    files = sorted(glob.glob(base + ".*"), key=lambda p: -int(p.rsplit(".", 1)[1])) + [base]
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            out += [json.loads(ln) for ln in fh if ln.strip()]
    return out


def test_rotates_keeps_order_and_resumes(tmp_path):
    db, base = str(tmp_path / "o.db"), str(tmp_path / "logs" / "alerts.jsonl")
    ob = Outbox(db)
    ob.append_many([("alert", f"a{i}", "high", float(i), {"message": "x" * 200 + "\u2028\x1b", "i": i})
                    for i in range(300)])
    url = f"file://{base}?max_mb=0.02&keep=50"
    d = Deliverer(db, parse(url))
    d.start()
    _wait(lambda: Outbox(db).cursor(d.dest.name) == 300)
    d.stop()
    assert len(glob.glob(base + ".*")) >= 3                     # 300 × ~300 bytes over 20 KiB files
    ob.append_many([("alert", f"a{i}", "high", float(i), {"i": i}) for i in range(300, 320)])
    d2 = Deliverer(db, parse(url))                              # a restart: resumes at its cursor
    d2.start()
    _wait(lambda: Outbox(db).cursor(d2.dest.name) == 320)
    d2.stop()
    got = _read_all(base)
    assert [r["id"] for r in got] == [f"a{i}" for i in range(320)]
    raw = open(base + ".1", encoding="utf-8").read()
    assert "\u2028" not in raw and "\x1b" not in raw


def test_keep_bounds_the_files(tmp_path):
    db, base = str(tmp_path / "o.db"), str(tmp_path / "a.jsonl")
    ob = Outbox(db)
    ob.append_many([("alert", f"a{i}", "low", 0.0, {"pad": "y" * 500}) for i in range(400)])
    d = Deliverer(db, parse(f"file://{base}?max_mb=0.01&keep=2"))
    d.start()
    _wait(lambda: Outbox(db).cursor(d.dest.name) == 400)
    d.stop()
    assert sorted(glob.glob(base + "*")) == [base, base + ".1", base + ".2"]


@pytest.mark.parametrize("url,why", [("file://host/x", "file:///absolute/path"), ("file:///x?max_mb=-1", "max_mb"),
                                     ("file:///x?rotate=1", "unknown option"), ("gopher://x", "scheme")])
def test_bad_urls(url, why):
    with pytest.raises(DestinationError, match=why):
        parse(url)
