"""The syslog formats parse strictly and keep every wire string inert."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from otwatch.parsers.common import escape
from otwatch.sensor.sinks import formats as F
from otwatch.sensor.sinks.record import Record

from support.syslog_strict import parse_cef, parse_leef, parse_rfc5424

HOSTILE = "^caret^ topic/\x1b[2J\x1b]0;pwned\x07\r\nFAKE: <13>1 x|y=z\\]\"\t\u2028\x85\x00end"


def alert(msg=HOSTILE, source="site|a=b].pcap", sev="high", **kw) -> Record:
    body = {"rule": "policy.flow_denied", "category": "policy", "message": msg, "src": "10.0.0.9",
            "dst": "10.0.0.2", "port": 502, "protocol": "modbus", "count": 3, "first_ts": 10.0, "last_ts": 12.5,
            "technique": "T0855", "src_zone": "it", "dst_zone": "cell-1",
            "evidence": [{"source": source, "frame": 9, "ts": 10.0, "flow_id": 4},
                         {"source": source, "frame": 11, "ts": 12.5, "flow_id": 4}]}
    body.update(kw)
    return Record(42, "a1b2c3", "alert", sev, 1_700_000_000.5, body)


def test_rfc5424_parses_and_carries_every_field():
    p = parse_rfc5424(F.rfc5424(alert(), hostname="sensor-1"))
    assert p["pri"] == 20 * 8 + 3          # local4.err for "high"
    assert (p["hostname"], p["app"], p["msgid"]) == ("sensor-1", "otwatch", "alert")
    sd = p["sd"]["otwatch@32473"]
    assert sd["id"] == "a1b2c3" and sd["seq"] == "42" and sd["rule"] == "policy.flow_denied"
    assert sd["src"] == "10.0.0.9" and sd["dst_zone"] == "cell-1" and sd["frames"] == "9,11"
    assert sd["source"] == escape("site|a=b].pcap")          # ] escaped in SD, restored by the parser
    assert p["msg"] == "\ufeff" + escape(HOSTILE)


def test_independent_rfc5424_parser_agrees():
    from syslog_rfc5424_parser import SyslogMessage

    m = SyslogMessage.parse(F.rfc5424(alert(), hostname="sensor-1"))
    assert m.sd["otwatch@32473"]["source"] == escape("site|a=b].pcap").replace("]", "\\]") or \
        m.sd["otwatch@32473"]["source"] == escape("site|a=b].pcap")
    assert m.hostname == "sensor-1"


def test_cef_parses_and_escapes():
    line = F.syslog_line("cef", alert(), "sensor-1")
    hdr = parse_rfc5424(line)
    assert hdr["sd"] == {} and hdr["msgid"] == "alert"
    c = parse_cef(hdr["msg"])
    assert c["signature"] == "policy.flow_denied" and c["severity"] == 8
    assert c["name"] == escape(HOSTILE)
    e = c["ext"]
    assert e["src"] == "10.0.0.9" and e["dpt"] == "502" and e["externalId"] == "a1b2c3" and e["cnt"] == "3"
    assert e["cs4"] == escape("site|a=b].pcap") and e["cs4Label"] == "evidenceSource"
    assert e["msg"] == escape(HOSTILE) and e["cn1"] == "42"
    assert e["start"] == "10000" and e["end"] == "12500" and e["rt"] == "1700000000500"


def test_leef_parses_and_escapes():
    hdr = parse_rfc5424(F.syslog_line("leef", alert(), "sensor-1"))
    lf = parse_leef(hdr["msg"])
    assert lf["event"] == "policy.flow_denied"
    a = lf["attrs"]
    assert a["src"] == "10.0.0.9" and a["dstPort"] == "502" and a["sev"] == "8" and a["devTimeFormat"] == "epoch"
    assert a["msg"] == escape(HOSTILE).replace("^", "\\x5e") and a["source"] == escape("site|a=b].pcap")


def test_json_line_is_exact_and_inert():
    s = F.jsonl(alert())
    assert "\n" not in s and "\u2028" not in s and "\x85" not in s and "\x1b" not in s
    assert json.loads(s)["body"]["message"] == HOSTILE


def test_header_fields_are_printable_and_bounded():
    p = parse_rfc5424(F.rfc5424(alert(), hostname="bad host\x1b" + "h" * 400, app="a" * 99))
    assert len(p["hostname"]) == 255 and " " not in p["hostname"] and "\x1b" not in p["hostname"]
    assert len(p["app"]) == 48


def test_huge_field_is_cut():
    p = parse_rfc5424(F.rfc5424(alert(msg="x" * 100_000)))
    assert len(p["msg"]) < 1100


@pytest.mark.parametrize("kind,body", [("heartbeat", {"message": "sensor alive", "packets": 10, "drops": 0}),
                                       ("loss", {"message": "outbox full", "dropped": 5, "first_seq": 1, "last_seq": 9})])
def test_other_kinds(kind, body):
    r = Record(1, "x", kind, "info", 5.0, body)
    p = parse_rfc5424(F.rfc5424(r))
    assert p["msgid"] == kind and p["msg"] == "\ufeff" + body["message"]
    parse_cef(F.cef(r))
    parse_leef(F.leef(r))


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=50), st.sampled_from(["info", "low", "medium", "high", "critical"]))
def test_any_string_stays_inert_in_every_format(msg, source, sev):
    r = alert(msg=msg, source=source, sev=sev)
    p = parse_rfc5424(F.rfc5424(r))
    assert p["msg"] == "\ufeff" + escape(msg, F.FIELD_LIMIT)
    assert p["sd"]["otwatch@32473"]["source"] == escape(source, F.FIELD_LIMIT)
    for fmt, parse in (("cef", parse_cef), ("leef", parse_leef)):
        line = F.syslog_line(fmt, r)
        inner = parse_rfc5424(line)["msg"]
        got = parse(inner)
        if fmt == "cef":
            assert got["ext"]["msg"] == escape(msg, F.FIELD_LIMIT)
            assert got["ext"]["cs4"] == escape(source, F.FIELD_LIMIT)
        else:
            assert got["attrs"]["msg"] == escape(msg, F.FIELD_LIMIT).replace("^", "\\x5e")
