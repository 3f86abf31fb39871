"""JSON lines: ECS-like names, and hostile wire strings escaped so that one record is one valid ASCII line."""
from __future__ import annotations

import io
import json

from otwatch.sensor.alerts import jsonl
from otwatch.sensor.alerts.aggregate import AlertBook

from .helpers import f

HOSTILE = ("quote\" back\\slash\nnew\rline\x00nul\x1b[31mred\x7fdel\x9b2Jc1 \u2028ls\u2029ps "
           "\ud800lone é 中 \U0001F4A9 </script>")


def test_hostile_strings_give_one_printable_ascii_line_that_round_trips():
    out = io.StringIO()
    book = AlertBook(listeners=[jsonl.JSONLAlerts(out)])
    book.raise_finding(f("posture.mqtt.wildcard_subscription", ("a", HOSTILE), message=HOSTILE,
                         src=HOSTILE, details={"topic": HOSTILE, HOSTILE: [HOSTILE, float("nan")], "b": b"\x00\xff"}))
    book.flush()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    line = text[:-1]
    assert all(32 <= ord(c) < 127 for c in line), "only printable ASCII on the wire"
    for raw in ("\x1b", "\x9b", "\u2028", "\u2029", "\x00", "\r"):
        assert raw not in line
    assert "\\u001b" in line and "\\u009b" in line and "\\u2028" in line
    rec = json.loads(line)
    expect = HOSTILE.replace("\ud800", "\ufffd")
    assert rec["message"] == expect and rec["source"]["ip"] == expect
    assert rec["otwatch"]["details"]["topic"] == expect
    assert rec["otwatch"]["details"][expect] == [expect, None]
    assert rec["otwatch"]["details"]["b"] == "00ff"
    json.dumps(rec).encode("utf-8")        # strict UTF-8: no surrogates survived


def test_record_uses_ecs_names():
    out = io.StringIO()
    book = AlertBook(listeners=[jsonl.JSONLAlerts(out)])
    book.raise_finding(f("recon.port_scan", ("10.0.0.66", "10.0.0.11"), src="10.0.0.66", dst="10.0.0.11",
                         protocol="tcp", frame=7))
    book.flush()
    rec = json.loads(out.getvalue())
    assert rec["event"]["kind"] == "alert" and rec["event"]["severity"] == 3 and rec["event"]["count"] == 1
    assert rec["rule"]["id"] == "recon.port_scan" and rec["rule"]["name"].startswith("Port scan")
    assert rec["source"] == {"ip": "10.0.0.66"} and rec["destination"] == {"ip": "10.0.0.11"}
    assert rec["threat"]["framework"] == "MITRE ATT&CK for ICS"
    assert rec["threat"]["technique"] == {"id": ["T0846"], "name": ["Remote System Discovery"],
                                          "reference": ["https://attack.mitre.org/techniques/T0846/"]}
    assert rec["otwatch"]["evidence"] == [{"source": "cap.pcap", "frame": 7, "ts": 7.0, "flow_id": 0}]
    assert rec["@timestamp"] == "1970-01-01T00:00:07.000000Z"
