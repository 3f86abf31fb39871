"""The outbox: sequenced, cursored, bounded with a loss record, safe with several processes."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3

from otwatch.sensor.sinks.outbox import Outbox, migrate


def _db(tmp_path):
    return str(tmp_path / "otwatch.db")


def test_append_read_advance(tmp_path):
    ob = Outbox(_db(tmp_path))
    seqs = ob.append_many([("alert", f"a{i}", "medium", float(i), {"message": f"m{i}"}) for i in range(5)])
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert ob.register("syslog:x") == 0
    recs = ob.after(0)
    assert [r.id for r in recs] == [f"a{i}" for i in range(5)] and recs[0].body == {"message": "m0"}
    ob.advance("syslog:x", recs[2].seq, 3)
    assert [r.id for r in ob.after(ob.cursor("syslog:x"))] == ["a3", "a4"]
    ob.advance("syslog:x", recs[0].seq, 0)           # never backwards
    assert ob.cursor("syslog:x") == recs[2].seq
    st = ob.stats()["destinations"]["syslog:x"]
    assert st == {"cursor": recs[2].seq, "delivered": 3, "behind": 2}


def test_prune_keeps_what_a_destination_has_not_delivered(tmp_path):
    ob = Outbox(_db(tmp_path))
    ob.append_many([("alert", f"a{i}", "low", 0.0, {}) for i in range(10)])
    ob.register("a")
    ob.register("b")
    ob.advance("a", 10, 10)
    ob.advance("b", 4, 4)
    assert ob.prune() == 4
    assert [r.seq for r in ob.after(0)] == list(range(5, 11))


def test_sequence_numbers_are_never_reused(tmp_path):
    ob = Outbox(_db(tmp_path))
    ob.append("alert", "a", "low", 0.0, {})
    ob.register("d")
    ob.advance("d", 1, 1)
    ob.prune()
    assert ob.append("alert", "b", "low", 0.0, {}) == 2


def test_bound_drops_lowest_severity_first_and_says_so(tmp_path):
    ob = Outbox(_db(tmp_path), max_records=100)
    ob.append_many([("alert", f"crit{i}", "critical", 0.0, {}) for i in range(20)])
    ob.append_many([("heartbeat", f"hb{i}", "info", 0.0, {}) for i in range(60)])
    ob.append_many([("alert", f"med{i}", "medium", 0.0, {}) for i in range(30)])   # 110 > 100
    recs = ob.after(0, 1000)
    ids = [r.id for r in recs]
    assert len(recs) <= 100
    assert all(f"crit{i}" in ids for i in range(20)) and all(f"med{i}" in ids for i in range(30))
    lost = [r for r in recs if r.kind == "loss"]
    assert len(lost) == 1
    body = lost[0].body
    assert body["by_severity"] == {"info": 60 - sum(1 for i in ids if i.startswith("hb"))}
    assert body["dropped"] == body["by_severity"]["info"] and body["dropped"] >= 10
    # the dropped ones are the oldest heartbeats
    kept_hb = [int(i[2:]) for i in ids if i.startswith("hb")]
    assert kept_hb == list(range(60 - len(kept_hb), 60))
    assert lost[0].severity == "high" and ob.dropped == body["dropped"]


def test_bound_prunes_delivered_rows_before_dropping_anything(tmp_path):
    ob = Outbox(_db(tmp_path), max_records=50)
    ob.register("d")
    ob.append_many([("alert", f"a{i}", "low", 0.0, {}) for i in range(50)])
    ob.advance("d", 50, 50)
    ob.append_many([("alert", f"b{i}", "low", 0.0, {}) for i in range(10)])
    assert not [r for r in ob.after(0, 1000) if r.kind == "loss"] and ob.dropped == 0


def _writer(path, who, n):
    ob = Outbox(path)
    for i in range(n):
        ob.append("alert", f"{who}-{i}", "medium", float(i), {"i": i})
    ob.close()


def test_several_processes_migrate_and_write_at_once(tmp_path):
    path = _db(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    reader_seen = 0
    while any(p.is_alive() for p in procs):
        if os.path.exists(path):
            try:
                c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
                reader_seen = max(reader_seen, c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
                c.close()
            except sqlite3.OperationalError as exc:   # the table may not exist yet
                assert "no such table" in str(exc)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    ob = Outbox(path)
    recs = ob.after(0, 10_000)
    assert len(recs) == 800 and len({r.id for r in recs}) == 800
    for w in range(4):   # each writer's records are in its order
        mine = [r.body["i"] for r in recs if r.id.startswith(f"{w}-")]
        assert mine == list(range(200))


def test_migrate_is_idempotent(tmp_path):
    path = _db(tmp_path)
    migrate(path)
    migrate(path)
    assert Outbox(path).append("alert", "x", "low", 0.0, {}) == 1
