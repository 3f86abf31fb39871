"""Live: asyncua client and server on 127.0.0.1 through a recording proxy, decoded
on the spot (the stored vectors are the same scenarios, captured once)."""
from __future__ import annotations

import pytest
from capture_vectors import capture

from otwatch.parsers.opcua import events as ev


@pytest.fixture(scope="module")
def live():
    return capture()


def test_live_capture_decodes_cleanly(live, make_conn):
    assert set(live) >= {"get_endpoints", "none_anonymous", "basic256sha256_encrypt", "basic256sha256_sign"}
    for name, segs in live.items():
        conn = make_conn()
        got = []
        for side, data in segs:
            got.extend(conn.feed(data, side))
        assert not [e for e in got if isinstance(e, ev.Anomaly)], name
        if name != "unopened_channel":
            assert all(e.malformed is None for e in got), (name, [e for e in got if e.malformed])
        assert isinstance(got[0], ev.OPCUAHello)
