"""The password of a UserName identity token never reaches an event, its repr or its dict."""
from __future__ import annotations

import json

import opcua_wire as w
from capture_vectors import PASSWORD

from otwatch.parsers.opcua import events as ev
from otwatch.parsers.opcua.decode import to_dict

PLAIN = "hunter2-Plaintext!"


def _all_text(events) -> str:
    return "\n".join(repr(e) + json.dumps(to_dict(e) if not isinstance(e, ev.Anomaly) else e.__dict__)
                     for e in events)


def test_plaintext_password_never_surfaces(make_conn):
    wire = w.activate_session_plain_password("operator", PLAIN)
    assert PLAIN.encode() in wire
    (e,) = make_conn().feed(wire, 0)
    assert isinstance(e, ev.OPCUAActivateSessionRequest)
    assert e.user_name == "operator" and e.password_present and not e.password_encrypted
    text = _all_text([e])
    assert PLAIN not in text and PLAIN.encode().hex() not in text


def test_captured_username_login(make_conn, vectors):
    conn = make_conn()
    got = []
    for side, data in vectors["none_username"]:
        got.extend(conn.feed(data, side))
    act = next(e for e in got if isinstance(e, ev.OPCUAActivateSessionRequest))
    assert act.user_name == "operator" and act.password_present
    assert act.password_encrypted and act.encryption_algorithm.endswith("rsa-oaep")
    text = _all_text(got)
    assert PASSWORD not in text and PASSWORD.encode().hex() not in text
