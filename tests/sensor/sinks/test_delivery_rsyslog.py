"""Delivery to a real rsyslog on loopback: UDP, TCP with octet counting, TLS with a test CA.

Every record arrives, parses strictly in its format and keeps hostile strings
inert; a collector stopped mid-run and restarted loses nothing and reorders
nothing (duplicates allowed, recognisable by id); an outbox filled past its
bound delivers its loss record.
"""
from __future__ import annotations

import signal
import time

import pytest

from otwatch.parsers.common import escape
from otwatch.sensor.sinks.deliver import Deliverer
from otwatch.sensor.sinks.outbox import Outbox
from otwatch.sensor.sinks.syslog import parse
from support.rsyslog import RSYSLOGD, Collector
from support.syslog_strict import parse_cef, parse_leef, parse_rfc5424

pytestmark = pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd not installed (tests/run.sh installs it)")

HOSTILE = "plant/\x1b]0;owned\x07\x1b[2J\r\n<13>1 fake|x=y\\]\"^\u2028"


def _fill(ob: Outbox, n: int, start: int = 0, sev: str = "high") -> list[str]:
    ids = [f"alert-{i}" for i in range(start, start + n)]
    ob.append_many([("alert", rid, sev, 1_700_000_000.0 + i,
                     {"rule": "policy.flow_denied", "category": "policy", "message": f"{HOSTILE} #{i}",
                      "src": "10.0.0.9", "dst": "10.0.0.2", "port": 502, "protocol": "modbus", "count": 1,
                      "evidence": [{"source": "demo.pcap", "frame": i + 1, "ts": float(i), "flow_id": 1}]})
                    for i, rid in zip(range(start, start + n), ids)])
    return ids


def _ids(lines: list[str], fmt: str) -> list[str]:
    out = []
    for ln in lines:
        p = parse_rfc5424(ln)
        if fmt == "rfc5424":
            out.append(p["sd"]["otwatch@32473"]["id"])
        elif fmt == "cef":
            out.append(parse_cef(p["msg"])["ext"]["externalId"])
        else:
            out.append(parse_leef(p["msg"])["attrs"]["id"])
    return out


@pytest.fixture
def collector(request, tmp_path):
    kind = request.param
    c = Collector(str(tmp_path / "rs"), kind) if False else None
    (tmp_path / "rs").mkdir()
    c = Collector(str(tmp_path / "rs"), kind)
    c.start()
    yield c
    c.stop()


def _url(c: Collector, fmt: str) -> str:
    u = f"{c.kind}://127.0.0.1:{c.port}?format={fmt}"
    if c.kind == "tls":
        u += f"&ca={c.certs['ca']}&servername=localhost"
    return u


@pytest.mark.parametrize("collector,fmt", [("udp", "rfc5424"), ("tcp", "rfc5424"), ("tcp", "cef"),
                                           ("tls", "leef"), ("tls", "rfc5424")], indirect=["collector"])
def test_every_alert_arrives_parses_and_stays_inert(collector, fmt, tmp_path):
    db = str(tmp_path / "o.db")
    ob = Outbox(db)
    ids = _fill(ob, 50)
    d = Deliverer(db, parse(_url(collector, fmt)), hostname="sensor-1")
    d.start()
    lines = collector.wait_for(lambda got: len(got) >= 50)
    d.stop()
    assert _ids(lines, fmt) == ids, d.stats()
    for ln in lines:
        assert "\x1b" not in ln and "\x07" not in ln and "\u2028" not in ln
        assert "#012" not in ln            # rsyslog's mark for a control character it had to escape
        p = parse_rfc5424(ln)
        assert p["hostname"] == "sensor-1"
    first = parse_rfc5424(lines[0])
    if fmt == "rfc5424":
        assert first["msg"] == "\ufeff" + escape(HOSTILE + " #0")
    assert Outbox(db).cursor(d.dest.name) == ob.after(0, 1000)[-1].seq


@pytest.mark.parametrize("collector", ["tcp", "tls"], indirect=True)
def test_collector_down_and_back_loses_nothing(collector, tmp_path):
    db = str(tmp_path / "o.db")
    ob = Outbox(db)
    d = Deliverer(db, parse(_url(collector, "rfc5424")), hostname="sensor-1")
    d.start()
    ids = _fill(ob, 30)
    collector.wait_for(lambda got: len(got) >= 30)
    collector.stop()
    ids += _fill(ob, 40, start=30)         # written while the collector is down
    time.sleep(1.5)                         # the deliverer notices and backs off
    collector.start()
    ids += _fill(ob, 30, start=70)
    lines = collector.wait_for(lambda got: set(ids) <= set(_ids(got, "rfc5424")), timeout=60)
    d.stop()
    got = _ids(lines, "rfc5424")
    assert set(got) == set(ids)
    # in order: the first arrival of each id follows the outbox order
    first = []
    for i in got:
        if i not in first:
            first.append(i)
    assert first == ids
    assert d.errors >= 1


@pytest.mark.parametrize("collector", ["tcp", "tls"], indirect=True)
def test_collector_killed_mid_stream_loses_nothing(collector, tmp_path):
    """A collector that hangs (SIGSTOP: its kernel keeps acknowledging into the socket buffer)
    and is then killed: whatever its kernel had acknowledged but rsyslog had not read is resent
    after the restart."""
    db = str(tmp_path / "o.db")
    ob = Outbox(db)
    ids = _fill(ob, 4000)
    d = Deliverer(db, parse(_url(collector, "rfc5424")), hostname="sensor-1")
    d.start()
    collector.wait_for(lambda got: len(got) >= 300)
    collector.proc.send_signal(signal.SIGSTOP)
    time.sleep(1.0)
    collector.stop(signal.SIGKILL)
    time.sleep(1.0)
    collector.start()
    lines = collector.wait_for(lambda got: set(ids) <= set(_ids(got, "rfc5424")), timeout=90)
    d.stop()
    got = _ids(lines, "rfc5424")
    assert set(ids) - set(got) == set(), (len(set(ids) - set(got)), d.stats())
    first = list(dict.fromkeys(got))
    assert first == ids


@pytest.mark.parametrize("collector", ["tcp"], indirect=True)
def test_full_outbox_delivers_its_loss_record(collector, tmp_path):
    db = str(tmp_path / "o.db")
    ob = Outbox(db, max_records=100)
    _fill(ob, 80, sev="critical")
    _fill(ob, 60, start=80, sev="low")          # past the bound: low ones go, a loss record comes
    d = Deliverer(db, parse(_url(collector, "rfc5424")))
    d.start()
    lines = collector.wait_for(lambda got: any(parse_rfc5424(g)["msgid"] == "loss" for g in got))
    d.stop()
    loss = [parse_rfc5424(g) for g in lines if parse_rfc5424(g)["msgid"] == "loss"]
    assert len(loss) == 1
    sd = loss[0]["sd"]["otwatch@32473"]
    assert int(sd["dropped"]) >= 40 and loss[0]["pri"] % 8 == 3
    got = _ids([g for g in lines if parse_rfc5424(g)["msgid"] == "alert"], "rfc5424")
    assert all(f"alert-{i}" in got for i in range(80))     # every critical one kept


def test_tls_refuses_an_unverified_collector(tmp_path):
    (tmp_path / "rs").mkdir()
    c = Collector(str(tmp_path / "rs"), "tls")
    c.start()
    try:
        db = str(tmp_path / "o.db")
        ob = Outbox(db)
        _fill(ob, 3)
        # no ca=: the system store does not know the test CA, so nothing may be sent
        d = Deliverer(db, parse(f"tls://127.0.0.1:{c.port}?format=rfc5424&servername=localhost"))
        d.start()
        time.sleep(2.0)
        d.stop()
        assert c.lines() == [] and d.errors >= 1 and "CERTIFICATE_VERIFY_FAILED" in d.last_error
        assert Outbox(db).cursor(d.dest.name) == 0
    finally:
        c.stop()


def test_tls_with_client_certificate(tmp_path):
    (tmp_path / "rs").mkdir()
    c = Collector(str(tmp_path / "rs"), "tls", client_auth=True)
    c.start()
    try:
        db = str(tmp_path / "o.db")
        ob = Outbox(db)
        ids = _fill(ob, 5)
        k = c.certs
        d = Deliverer(db, parse(f"tls://127.0.0.1:{c.port}?format=cef&ca={k['ca']}&servername=localhost"
                                f"&cert={k['client']}&key={k['client_key']}"))
        d.start()
        lines = c.wait_for(lambda got: len(got) >= 5)
        d.stop()
        assert _ids(lines, "cef") == ids
    finally:
        c.stop()
