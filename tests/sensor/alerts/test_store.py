"""AlertStore: upsert by id, lifecycle, status kept across re-runs, a reader never blocked by the writer."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from otwatch.sensor.alerts import store as S
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.model import MAX_EVIDENCE

from .helpers import f


def _run(st, frames, key=("10.0.0.66", "10.0.0.11"), source="cap.pcap"):
    book = AlertBook(listeners=[st])
    for fr in frames:
        book.raise_finding(f(key=key, frame=fr))
    book.flush()
    return f(key=key).alert_id


def test_upsert_adds_counts_merges_evidence_and_keeps_the_first_message(tmp_path):
    st = S.open_store(str(tmp_path / "db.sqlite"))
    aid = _run(st, range(1, 11))
    aid2 = _run(st, range(100, 130))
    assert aid == aid2
    row = st.get(aid)
    assert row["count"] == 40 and row["first_ts"] == 1.0 and row["last_ts"] == 129.0
    assert row["status"] == "open"
    frames = [e[1] for e in row["evidence"]]
    assert len(frames) == MAX_EVIDENCE and frames[:10] == list(range(1, 11)) and frames[-1] == 129
    assert st.get(aid[:8])["id"] == aid     # unique prefix


def test_lifecycle_and_what_a_rerun_does_to_each_status(tmp_path):
    st = S.open_store(str(tmp_path / "db.sqlite"))
    keys = {name: ("h", name) for name in ("open", "ack", "accepted", "resolved")}
    ids = {n: _run(st, [1], key=k) for n, k in keys.items()}
    st.ack(ids["ack"], note="looking")
    st.ack(ids["accepted"])
    st.close(ids["accepted"], "accepted")
    st.close(ids["resolved"], "resolved")
    with pytest.raises(ValueError):
        st.ack(ids["resolved"])                # closed alerts are not acknowledged
    with pytest.raises(ValueError):
        st.close(ids["open"], "fixed")          # unknown reason
    with pytest.raises(KeyError):
        st.ack("0" * 20)
    for n, k in keys.items():                  # the same conditions fire again (a re-run)
        _run(st, [2], key=k)
    got = {n: (st.get(i)["status"], st.get(i)["close_reason"], st.get(i)["reopened"], st.get(i)["count"])
           for n, i in ids.items()}
    assert got == {"open": ("open", "", 0, 2), "ack": ("acknowledged", "", 0, 2),
                   "accepted": ("closed", "accepted", 0, 2), "resolved": ("open", "", 1, 2)}
    assert st.get(ids["ack"])["status_note"] == "looking" and st.get(ids["ack"])["status_at"].endswith("Z")


def test_query_filters_and_orders(tmp_path):
    st = S.open_store(str(tmp_path / "db.sqlite"))
    book = AlertBook(listeners=[st])
    book.raise_finding(f("protocol.modbus_malformed", ("a",), frame=5))      # low
    book.raise_finding(f("recon.port_scan", ("b",), frame=3))                # high
    book.raise_finding(f("posture.mqtt.wildcard_subscription", ("c",), frame=9))  # medium
    book.flush()
    assert [r["rule"] for r in st.query()] == ["recon.port_scan", "posture.mqtt.wildcard_subscription",
                                               "protocol.modbus_malformed"]
    assert [r["rule"] for r in st.query(min_severity="medium")] == ["recon.port_scan",
                                                                    "posture.mqtt.wildcard_subscription"]
    assert [r["rule"] for r in st.query(since=4.0)] == ["posture.mqtt.wildcard_subscription",
                                                        "protocol.modbus_malformed"]
    st.close(f("recon.port_scan", ("b",)).alert_id)
    assert "recon.port_scan" not in [r["rule"] for r in st.query()]
    assert "recon.port_scan" in [r["rule"] for r in st.query(statuses=None)]


def test_a_reader_is_never_blocked_and_sees_whole_flushes(tmp_path):
    path = str(tmp_path / "db.sqlite")
    st = S.open_store(path)
    _run(st, [1], key=("seed",))
    errors, seen = [], []
    done = threading.Event()

    def reader():
        db = S.connect(path, readonly=True)
        try:
            while not done.is_set():
                rows = S.query(db, statuses=None)
                # every flush writes 5 new alerts in one transaction: a reader sees 1 + 5k, never a part
                seen.append(len(rows))
                if (len(rows) - 1) % 5:
                    errors.append(len(rows))
        except sqlite3.Error as exc:            # "database is locked" would land here
            errors.append(repr(exc))
        finally:
            db.close()

    t = threading.Thread(target=reader)
    t.start()
    try:
        for n in range(60):
            book = AlertBook(listeners=[st])
            for i in range(5):
                book.raise_finding(f(key=("k", n, i)))
            book.flush()
    finally:
        done.set()
        t.join()
    assert errors == []
    assert seen and len(st.query(statuses=None)) == 301


def test_readonly_open_of_a_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        S.connect(str(tmp_path / "nope.db"), readonly=True)
