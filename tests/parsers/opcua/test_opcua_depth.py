"""Decoder depth: PublishResponse notifications (DataChange items, event counts, status change) and
TranslateBrowsePathsToNodeIds, from real asyncua bytes (opcua_depth_vectors.json, capture_depth_vectors.py)."""
from __future__ import annotations

import json
import struct

import pytest
from capture_depth_vectors import LONG_TEXT, load, status_change_response
from helpers import assert_decodes
from opcua_wire import chunks_by_side

from otwatch.parsers.opcua import events as ev
from otwatch.parsers.opcua import spec
from otwatch.parsers.opcua.decode import decode, to_dict


@pytest.fixture(scope="module")
def depth():
    return load()["subscription"]


def _whole(make_conn, segments):
    conn = make_conn()
    got = []
    for side, data in segments:
        got.extend(conn.feed(data, side))
    return got


def _message(depth, type_id: int) -> tuple[int, bytes]:
    for side, msgs in chunks_by_side(depth).items():
        for m in msgs:
            if m[:4] == b"MSGF" and struct.unpack_from("<H", m, 26)[0] == type_id and m[24] == 1:
                return side, m
    raise AssertionError(f"no message with type id {type_id}")


def test_depth_connection_decodes_cleanly(make_conn, depth):
    got = _whole(make_conn, depth)
    assert not [e for e in got if isinstance(e, ev.Anomaly)]
    assert all(e.malformed is None for e in got), [e for e in got if e.malformed]
    kinds = {type(e).__name__ for e in got}
    assert {"OPCUATranslateBrowsePathsToNodeIdsRequest", "OPCUATranslateBrowsePathsToNodeIdsResponse",
            "OPCUAPublishResponse", "OPCUAServiceFault"} <= kinds
    assert all(isinstance(json.dumps(to_dict(e)), str) for e in got)


@pytest.mark.parametrize("type_id", [554, 557, 829])
def test_depth_messages_decode_every_way(make_conn, depth, type_id):
    side, m = _message(depth, type_id)
    expected = make_conn().feed(m, side)
    assert len(expected) == 1 and expected[0].malformed is None
    assert_decodes(make_conn, side, m, expected)


def test_translate_browse_paths_request(make_conn, depth):
    got = _whole(make_conn, depth)
    req = next(e for e in got if isinstance(e, ev.OPCUATranslateBrowsePathsToNodeIdsRequest))
    assert req.browse_path_count == 3 and len(req.browse_paths) == 3
    first, second, third = req.browse_paths
    assert first.starting_node == "i=85" and first.element_count == 2
    assert [e.target_name for e in first.elements] == ["2:Line3", "2:Temperature"]
    assert all(e.reference_type_id == "i=33" and not e.is_inverse and e.include_subtypes for e in first.elements)
    assert first.path == "/2:Line3/2:Temperature"
    # Aggregates hop ('.'), an inverse HasComponent hop ('<!i=47>'), reserved characters '&'-escaped
    assert second.starting_node == "ns=2;i=1"
    assert second.elements[0].target_name == "2:Tank/1.Level" and second.elements[1].is_inverse
    assert second.path == ".2:Tank&/1&.Level<!i=47>2:Line3"
    assert third.path == "/2:Line3/2:Missing"


def test_translate_browse_paths_response(make_conn, depth):
    got = _whole(make_conn, depth)
    resp = next(e for e in got if isinstance(e, ev.OPCUATranslateBrowsePathsToNodeIdsResponse))
    assert resp.result_count == 3
    ok, agg, missing = resp.results
    assert ok.status_name == "Good" and ok.target_count == 1
    assert ok.targets[0].target_id == "ns=2;i=2" and ok.targets[0].remaining_path_index is None
    assert agg.status_name == "Good" and agg.targets[0].target_id == "ns=2;i=1"
    assert missing.status_name == "BadNoMatch" and missing.target_count == 0 and missing.targets == ()


def test_read_unknown_node_is_an_operation_level_status(make_conn, depth):
    got = _whole(make_conn, depth)
    read = next(e for e in got if isinstance(e, ev.OPCUAReadResponse))
    assert read.header.service_result_name == "Good"
    assert [r.status_name for r in read.results] == ["Good", "BadNodeIdUnknown"]
    fault = next(e for e in got if isinstance(e, ev.OPCUAServiceFault))
    assert fault.header.service_result_name == "BadSessionNotActivated"


def test_publish_response_data_changes(make_conn, depth):
    got = _whole(make_conn, depth)
    handles = {i.client_handle: i.node_id for e in got if isinstance(e, ev.OPCUACreateMonitoredItemsRequest)
               for i in e.items}
    pubs = [e for e in got if isinstance(e, ev.OPCUAPublishResponse)]
    initial, changed = pubs[0], pubs[1]
    assert initial.notification_types == ("DataChangeNotification",)
    assert initial.data_change_count == len(initial.data_changes) == 7 == initial.notification_count
    assert {d.client_handle for d in initial.data_changes} <= set(handles)
    by_handle = {d.client_handle: d for d in changed.data_changes}
    assert changed.notification_types == ("DataChangeNotification", "EventNotificationList")
    assert changed.data_change_count == 6 and changed.event_count == 1
    assert changed.notification_count == 7
    dbl, u32, boolean, text, arr, sensor = (by_handle[h] for h in range(201, 207))
    assert (dbl.value_type, dbl.value, dbl.status_name) == ("Double", "21.75", "Good")
    assert dbl.source_timestamp and dbl.server_timestamp and dbl.array_length is None
    assert (u32.value_type, u32.value) == ("UInt32", "7")
    assert (boolean.value_type, boolean.value) == ("Boolean", "True")
    # the String preview: quoted, control characters escaped, bounded
    assert text.value_type == "String"
    assert "\x1b" not in text.value and "\n" not in text.value and "\t" not in text.value
    assert text.value.startswith('"line 3 \\x1b[2J"reset"\\x09temp>80\\x0a')
    assert text.value.endswith("…[+%d]" % (len(LONG_TEXT) + 2 + 3 * 3 - 64))   # 3 control chars: 4 chars each
    assert (arr.value_type, arr.array_length) == ("Int32", 12) and arr.value.startswith("[10, 11,")
    assert arr.value.endswith(", …]")
    assert sensor.status_name == "BadSensorFailure" and sensor.source_timestamp is None
    (event,) = changed.events
    assert event.client_handle == 208 and event.field_count > 5   # BaseEventType select clauses
    assert changed.status_change is None


def test_publish_response_status_change():
    m = status_change_response(code=0x800A0000)
    (e,) = [decode((spec.MSG_SERVICE, 829), m, None, 1)]
    assert isinstance(e, ev.OPCUAPublishResponse) and e.malformed is None
    assert e.notification_types == ("StatusChangeNotification",) and e.status_change == "BadTimeout"
    assert e.notification_count == 0 and e.data_changes == () and e.events == ()


def test_publish_response_bounded_and_malformed(depth):
    side, m = _message(depth, 829)
    good = decode((spec.MSG_SERVICE, 829), m, None, side)
    assert good.data_change_count == 7
    # a MonitoredItems count of 2^31-1 is refused before anything is allocated; what came before is kept
    pos = m.index(struct.pack("<i", 7), 24)
    bad = m[:pos] + struct.pack("<i", 0x7FFFFFFF) + m[pos + 4:]
    e = decode((spec.MSG_SERVICE, 829), bad, None, side)
    assert e.malformed and "MonitoredItems" in e.malformed
    assert e.subscription_id == good.subscription_id and e.notification_types == ("DataChangeNotification",)
    # cut inside the notification body: malformed, never an exception
    for cut in range(len(m) - 9, 24, -37):   # the trailing DiagnosticInfos array is not read
        t = m[:cut]
        t = t[:4] + struct.pack("<I", len(t)) + t[8:]
        e = decode((spec.MSG_SERVICE, 829), t, None, side)
        assert isinstance(e, ev.OPCUAPublishResponse) and e.malformed


def test_translate_bounded_and_malformed(depth):
    side, m = _message(depth, 554)
    good = decode((spec.MSG_SERVICE, 554), m, None, side)
    pos = m.index(struct.pack("<i", 3), 24)   # BrowsePaths count
    e = decode((spec.MSG_SERVICE, 554), m[:pos] + struct.pack("<i", -5) + m[pos + 4:], None, side)
    assert e.malformed and "negative" in e.malformed
    for cut in range(len(m) - 1, 24, -11):
        t = m[:cut]
        e = decode((spec.MSG_SERVICE, 554), t[:4] + struct.pack("<I", len(t)) + t[8:], None, side)
        assert isinstance(e, ev.OPCUATranslateBrowsePathsToNodeIdsRequest) and e.malformed
    assert good.malformed is None
