"""The repeat fast paths of the protocol kernels, and the tallies they bump.

A message whose *shape* (the bytes that decide its key) was seen before on the
same connection is counted on the cached Tally without building its key
(ext/modbus.py requests, ext/mqtt.py PUBLISH); OPC UA keeps each connection's
tallies by slot.  These tests check that the cache is invisible: a changed
message after a cached one is counted under its own key, records and tallies
are what the full path gives, and the cache stays within its bound.  Every
test runs on both implementations (``kernels``).
"""
from __future__ import annotations

import random
import struct

import pytest

from otwatch.parsers import common
from otwatch.parsers.common import REC_ANOMALY, REC_MSG, T_COUNT, T_FIRST_FRAME, T_INT_COUNT
from otwatch.parsers.limits import Limits
from otwatch.parsers.modbus import spec as mb
from otwatch.parsers.mqtt import spec as mq
from otwatch.parsers.opcua import spec as ua

SMALL = Limits(shape_cache_entries=4)


def adu(pdu: bytes, tid: int, unit: int = 1) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def read(fc: int, addr: int, qty: int) -> bytes:
    return struct.pack(">BHH", fc, addr, qty)


def keys(out, tag=REC_MSG):
    return [r[4] for r in out if r[0] == tag]


def feed_all(core, items, out):
    for i, (side, data) in enumerate(items):
        core.feed(side, data, 0, len(data), 100.0 + i, i + 1, out)


# --- Modbus --------------------------------------------------------------------------


def modbus_poll(cycles, polls, tid0=1):
    items, tid = [], tid0
    for _ in range(cycles):
        for unit, fc, addr, qty in polls:
            items.append((0, adu(read(fc, addr, qty), tid, unit)))
            items.append((1, adu(bytes([fc, 2 * qty]) + bytes(2 * qty), tid, unit)))
            tid = (tid + 1) & 0xFFFF
    return items


def test_modbus_repeats_count_under_the_same_keys(kernels):
    seen, out = {}, []
    core = kernels("modbus").ModbusCore(seen, False)
    polls = [(1, 3, 0, 10), (1, 3, 100, 4), (2, 4, 0, 2)]
    feed_all(core, modbus_poll(5, polls), out)
    req = [(mb.MSG_REQUEST, u, fc, a, q) for u, fc, a, q in polls]
    resp = [(mb.MSG_RESPONSE,) + k[1:] for k in req]
    # each key reported once (when new), in order
    assert keys(out) == [k for pair in zip(req, resp) for k in pair]
    for i, k in enumerate(req):
        t = seen[k]
        assert (t.count, t.int_count, t.first_frame) == (5, 5, 2 * i + 1)
        assert t.nbytes == 5 * 12 and t.int_bytes == t.nbytes
        assert t.first_ts == 100.0 + 2 * i and t.last_ts == 100.0 + 2 * i + 2 * len(polls) * 4
        assert seen[resp[i]].count == 5
    assert core.pending == {} and core.requests == core.responses == 15


def test_modbus_changed_request_after_a_cached_one_has_its_own_key(kernels):
    seen, out = {}, []
    core = kernels("modbus").ModbusCore(seen, False)
    items = modbus_poll(3, [(1, 3, 0, 10)])
    items += modbus_poll(1, [(1, 3, 0, 11)], tid0=50)    # quantity changed
    items += modbus_poll(1, [(7, 3, 0, 10)], tid0=60)    # unit changed
    items += modbus_poll(1, [(1, 4, 0, 10)], tid0=70)    # function changed
    items += modbus_poll(2, [(1, 3, 0, 10)], tid0=80)    # back to the first
    feed_all(core, items, out)
    assert keys(out) == [(mb.MSG_REQUEST, 1, 3, 0, 10), (mb.MSG_RESPONSE, 1, 3, 0, 10),
                         (mb.MSG_REQUEST, 1, 3, 0, 11), (mb.MSG_RESPONSE, 1, 3, 0, 11),
                         (mb.MSG_REQUEST, 7, 3, 0, 10), (mb.MSG_RESPONSE, 7, 3, 0, 10),
                         (mb.MSG_REQUEST, 1, 4, 0, 10), (mb.MSG_RESPONSE, 1, 4, 0, 10)]
    assert seen[(mb.MSG_REQUEST, 1, 3, 0, 10)].count == 5
    assert seen[(mb.MSG_RESPONSE, 1, 3, 0, 10)].count == 5
    for k in [(mb.MSG_REQUEST, 1, 3, 0, 11), (mb.MSG_REQUEST, 7, 3, 0, 10), (mb.MSG_REQUEST, 1, 4, 0, 10)]:
        assert seen[k].count == 1


def test_modbus_cached_request_still_pairs_mismatches_and_always_detailed(kernels):
    seen, out = {}, []
    core = kernels("modbus").ModbusCore(seen, False)
    r = read(3, 5, 2)
    items = [(0, adu(r, 1)), (1, adu(b"\x03\x04" + bytes(4), 1)),
             (0, adu(r, 2)), (1, adu(b"\x04\x04" + bytes(4), 2)),      # wrong function in the answer
             (0, adu(r, 3)), (1, adu(b"\x83\x02", 3)),                  # exception: always a record
             (0, adu(r, 4)), (0, adu(r, 4))]                            # a retry replaces the pending one
    feed_all(core, items, out)
    assert keys(out, REC_ANOMALY) == ["modbus.response_mismatch"]
    assert keys(out)[-1] == (mb.MSG_EXCEPTION, 1, 3, 2)
    assert seen[(mb.MSG_REQUEST, 1, 3, 5, 2)].count == 5
    assert core.pending == {4 << 8 | 1: ((mb.MSG_REQUEST, 1, 3, 5, 2), 8, 107.0)}
    # the exception record carries its request as context, from the cache entry
    rec = [r for r in out if r[0] == REC_MSG][-1]
    assert rec[6] == ((mb.MSG_REQUEST, 1, 3, 5, 2), 5, 104.0, 1.0)


def test_modbus_detail_all_reports_cached_repeats(kernels):
    seen, out = {}, []
    core = kernels("modbus").ModbusCore(seen, True)
    feed_all(core, modbus_poll(3, [(1, 3, 0, 10)]), out)
    assert len(keys(out)) == 6
    assert [r[6][1] for r in out if r[1] == 1] == [1, 3, 5]      # request frame of each response


def test_modbus_cache_is_bounded(kernels):
    seen, out = {}, []
    core = kernels("modbus").ModbusCore(seen, False, SMALL)
    polls = [(1, 3, a, 1) for a in range(10)]
    for cycle in range(3):
        feed_all(core, modbus_poll(1, polls, tid0=100 * cycle + 1), out)
        assert core.shapes_cached() <= SMALL.shape_cache_entries
    assert all(seen[(mb.MSG_REQUEST, 1, 3, a, 1)].count == 3 for a in range(10))
    assert len(keys(out)) == 20


def test_modbus_always_detailed_requests_are_not_cached(kernels):
    core = kernels("modbus").ModbusCore({}, False)
    out = []
    feed_all(core, [(0, adu(struct.pack(">BHH", 8, 0, v), v)) for v in range(20)], out)   # diagnostics
    assert core.shapes_cached() == 0 and len(keys(out)) == 20


def test_modbus_writes_are_cached_and_reported_once_per_register(kernels):
    # a write's shape holds its value: 20 values are 20 shapes, one register, one report
    core = kernels("modbus").ModbusCore({}, False)
    out = []
    feed_all(core, [(0, adu(struct.pack(">BHH", 6, 1, v), v)) for v in range(20)], out)
    assert core.shapes_cached() == 20 and keys(out) == [(mb.MSG_REQUEST, 1, 6, 1, 1)]


# --- MQTT ----------------------------------------------------------------------------


def mqtt_packet(first: int, body: bytes) -> bytes:
    n, v = len(body), bytearray()
    while True:
        v.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes([first]) + bytes(v) + body


def connect(level=4):
    return mqtt_packet(0x10, b"\x00\x04MQTT" + bytes([level, 2]) + b"\x00\x3c" + (b"\x00" if level == 5 else b"")
                       + b"\x00\x02id")


def publish(topic: bytes, payload: bytes, qos=0, retain=False, pid=1, v5_props=None):
    body = len(topic).to_bytes(2, "big") + topic + (pid.to_bytes(2, "big") if qos else b"")
    if v5_props is not None:
        body += bytes([len(v5_props)]) + v5_props
    return mqtt_packet(0x30 | (qos << 1) | int(retain), body + payload)


def test_mqtt_repeated_publish_counts_under_its_key(kernels):
    seen, out = {}, []
    core = kernels("mqtt").MQTTCore(seen, False)
    items = [(0, connect())] + [(0, publish(b"plant/t%d" % (i % 3), b"%d" % i)) for i in range(30)]
    feed_all(core, items, out)
    pub = [(mq.MSG_PUBLISH, "plant/t%d" % i) for i in range(3)]
    assert keys(out) == [(mq.MSG_CONNECT, 4)] + pub
    for i, k in enumerate(pub):
        assert seen[k].count == 10 and seen[k].first_frame == i + 2
    assert core.shapes_cached(0) == 3 and core.messages == 31


def test_mqtt_changed_flags_or_topic_after_a_cached_publish(kernels):
    seen, out = {}, []
    core = kernels("mqtt").MQTTCore(seen, False)
    t = b"plant/area1/s1/temperature"
    items = [(0, connect()), (0, publish(t, b"1")), (0, publish(t, b"2")),
             (0, publish(t, b"3", qos=1, pid=7)),          # QoS changed
             (0, publish(t, b"4", retain=True)),            # retain changed
             (0, publish(t[:-1] + b"X", b"5")),             # topic changed, same length
             (0, publish(t, b"6"))]
    feed_all(core, items, out)
    # new per topic: QoS and retain are in the event, not the key
    assert keys(out)[1:] == [(mq.MSG_PUBLISH, t.decode()), (mq.MSG_PUBLISH, t[:-1].decode() + "X")]
    assert seen[(mq.MSG_PUBLISH, t.decode())].count == 5


def test_mqtt_v5_alias_is_never_taken_from_the_cache(kernels):
    seen, out = {}, []
    core = kernels("mqtt").MQTTCore(seen, False)
    alias = bytes([mq.PROP_TOPIC_ALIAS]) + (3).to_bytes(2, "big")
    items = [(0, connect(5)), (0, publish(b"a/b", b"1", v5_props=b"")), (0, publish(b"a/b", b"2", v5_props=b"")),
             (0, publish(b"a/b", b"3", v5_props=alias)),       # same topic bytes, sets alias 3
             (0, publish(b"", b"4", v5_props=alias))]           # empty topic: resolved through the alias
    feed_all(core, items, out)
    assert seen[(mq.MSG_PUBLISH, "a/b")].count == 4
    assert keys(out, REC_ANOMALY) == []


def test_mqtt_cache_is_bounded_and_detail_all_reports_repeats(kernels):
    core = kernels("mqtt").MQTTCore({}, True, SMALL)
    out = []
    feed_all(core, [(0, connect())] + [(0, publish(b"t/%d" % (i % 9), b"x")) for i in range(40)], out)
    assert core.shapes_cached(0) <= SMALL.shape_cache_entries
    assert len(keys(out)) == 41


# --- OPC UA ----------------------------------------------------------------------------


def ua_msg(type_id: int, reqid: int, body=b"\x00" * 16) -> bytes:
    payload = struct.pack("<IIII", 7, 1, reqid, reqid) + b"\x01\x00" + struct.pack("<H", type_id) + body
    return b"MSGF" + struct.pack("<I", 8 + len(payload)) + payload


def test_opcua_slot_tallies(kernels):
    # Publish: a slotted service (Read, Write, Call, Browse, HistoryRead are node-keyed: test_opcua_nodes.py)
    seen, out = {}, []
    core = kernels("opcua").OPCUACore(seen, False)
    items = []
    for i in range(6):
        items += [(0, ua_msg(826, i + 1)), (1, ua_msg(829, i + 1)), (0, ua_msg(9999, 100 + i))]
    feed_all(core, items, out)
    # no OPN seen: a chunk without a known service id reads as encrypted (its own fixed slot)
    assert keys(out) == [(ua.MSG_SERVICE, 826), (ua.MSG_SERVICE, 829), (ua.MSG_ENCRYPTED,)]
    assert [seen[k].count for k in keys(out)] == [6, 6, 6]
    assert seen[(ua.MSG_SERVICE, 826)].first_frame == 1 and seen[(ua.MSG_ENCRYPTED,)].last_ts == 117.0


def test_opcua_two_connections_share_one_tally(kernels):
    seen, out = {}, []
    m = kernels("opcua")
    a, b = m.OPCUACore(seen, False), m.OPCUACore(seen, False)
    feed_all(a, [(0, ua_msg(826, 1))], out)
    feed_all(b, [(0, ua_msg(826, 1)), (0, ua_msg(826, 2))], out)
    feed_all(a, [(0, ua_msg(826, 3))], out)
    assert seen[(ua.MSG_SERVICE, 826)].count == 4 and len(keys(out)) == 1


# --- tallies -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["modbus", "mqtt", "opcua"])
def test_tally_reads_as_attributes_and_as_the_t_layout(kernels, name):
    t = kernels(name).Tally(12, 5.0, 3)
    assert (t.count, t.nbytes, t.first_ts, t.last_ts, t.int_count, t.int_bytes, t.first_frame) == (1, 12, 5.0, 5.0,
                                                                                                    1, 12, 3)
    assert t == [1, 12, 5.0, 5.0, 1, 12, 3, 3] and t == common.Tally(12, 5.0, 3) and len(t) == 8
    assert t[T_COUNT] == 1 and t[T_FIRST_FRAME] == 3 and t[T_INT_COUNT] == 1
    t.int_count = 0
    assert t != [1, 12, 5.0, 5.0, 1, 12, 3] and "Tally(" in repr(t)


def test_compiled_kernels_offer_a_c_entry_and_pure_ones_do_not(impl, kernels):
    for name, cls in (("modbus", "ModbusCore"), ("mqtt", "MQTTCore"), ("opcua", "OPCUACore")):
        core = getattr(kernels(name), cls)({}, False)
        assert (core.c_feed() != 0) == (impl == "compiled")


# --- both paths on the same input --------------------------------------------------------


def _drive(mod, cls, items, detail_all, limits=Limits()):
    seen, out = {}, []
    core = getattr(mod, cls)(seen, detail_all, limits)
    feed_all(core, items, out)
    return out, {k: v.as_list() for k, v in seen.items()}


@pytest.mark.parametrize("detail_all", [False, True])
def test_repeat_paths_compiled_equals_pure(detail_all):
    from otwatch import ext

    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    mb_items = modbus_poll(4, [(1, 3, 0, 10), (1, 1, 5, 3)]) + modbus_poll(1, [(1, 3, 0, 12)], 40)
    mq_items = [(0, connect())] + [(0, publish(b"x/%d" % (i % 7), b"v", qos=i % 2, pid=i + 1)) for i in range(50)]
    ua_items = [(i % 2, ua_msg(631 + 3 * (i % 2), i)) for i in range(20)]
    for name, cls, items in (("modbus", "ModbusCore", mb_items), ("mqtt", "MQTTCore", mq_items),
                             ("opcua", "OPCUACore", ua_items)):
        for limits in (Limits(), SMALL):
            assert _drive(ext.load(name, "pure"), cls, items, detail_all, limits) == \
                _drive(ext.load(name, "compiled"), cls, items, detail_all, limits)


def _lumping_items(seed: int):
    """Two units' blocks read and written whole, then random sub-ranges of them (lumped), some
    reaching past the blocks (new), the same shapes again and again (shape cache hits)."""
    rnd = random.Random(seed)
    items, tid = [], 1

    def ask(unit, pdu, rsp):
        nonlocal tid
        items.append((0, adu(pdu, tid, unit)))
        items.append((1, adu(rsp, tid, unit)))
        tid = (tid + 1) & 0xFFFF

    for unit in (1, 2):
        ask(unit, read(3, 0, 100), bytes([3, 200]) + bytes(200))
        ask(unit, struct.pack(">BHHB", 16, 0, 20, 40) + bytes(40), struct.pack(">BHH", 16, 0, 20))
    for _ in range(400):
        unit = rnd.choice((1, 2))
        if rnd.random() < 0.6:
            a = rnd.randrange(0, 110)
            q = rnd.randrange(1, 12)
            ask(unit, read(3, a, q), bytes([3, 2 * q]) + bytes(2 * q))
        else:
            a = rnd.randrange(0, 22)
            ask(unit, struct.pack(">BHHB", 16, a, 2, 4) + bytes(4), struct.pack(">BHH", 16, a, 2))
    return items


@pytest.mark.parametrize("limits", [Limits(), SMALL, Limits(shape_cache_entries=0), Limits(link_keys_max=40)])
def test_lump_keys_do_not_depend_on_the_shape_cache(kernels, limits):
    """Ranges inside the coverage with no key of their own go to the lump key (docs/protocols/
    modbus.md, "Register coverage") whether the shape cache remembers them or not."""
    items = _lumping_items(3)
    ref = _drive(kernels("modbus"), "ModbusCore", items, False, Limits(shape_cache_entries=0,
                                                                         link_keys_max=limits.link_keys_max))
    got = _drive(kernels("modbus"), "ModbusCore", items, False, limits)
    assert got == ref
    assert any(len(k) == 5 and k[3] == mb.KEY_COVERED for k in got[1])


def test_lump_keys_compiled_equals_pure():
    from otwatch import ext

    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    for seed in range(3):
        items = _lumping_items(seed)
        for limits in (Limits(), SMALL, Limits(link_keys_max=40, coverage_max_runs=3)):
            got = _drive(ext.load("modbus", "compiled"), "ModbusCore", items, False, limits)
            assert _drive(ext.load("modbus", "pure"), "ModbusCore", items, False, limits) == got
            assert any(len(k) == 5 and k[3] == -4 for k in got[1])       # the lump key is there
