"""What "new" means to the consumers, and the per-link key cap (issue 12), on both kernels.

Modbus: a request that names registers or coils is new when it reaches an address
not requested before on the link (per unit, table, read or write); a request whose
addresses were all seen is counted, not reported, however its range is cut.  MQTT:
a PUBLISH is new per (topic, direction): QoS and retain do not make it new.  Every
link direction tallies at most ``limits.link_keys_max`` keys; beyond, new keys are
counted under the overflow key and one ``<protocol>.key_overflow`` anomaly says so.
"""
from __future__ import annotations

import struct

import pytest

from otwatch.parsers.common import REC_ANOMALY, REC_MSG
from otwatch.parsers.limits import Limits
from otwatch.parsers.modbus import spec as mb
from otwatch.parsers.mqtt import spec as mq


def adu(pdu: bytes, tid: int, unit: int = 1) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def keys(out, side=None):
    return [r[4] for r in out if r[0] == REC_MSG and (side is None or r[1] == side)]


def anomalies(out):
    return [r[4] for r in out if r[0] == REC_ANOMALY]


class Modbus:
    """One link's two tally dicts and a connection on them; requests answered at once."""

    def __init__(self, kernels, limits=Limits(), seen=None, seen_s=None):
        self.seen = {} if seen is None else seen
        self.seen_s = {} if seen_s is None else seen_s
        self.core = kernels("modbus").ModbusCore(self.seen, False, limits, self.seen_s)
        self.out = []
        self.tid = 1
        self.frame = 1

    def feed(self, side, data):
        self.core.feed(side, data, 0, len(data), float(self.frame), self.frame, self.out)
        self.frame += 1

    def ask(self, pdu, response, unit=1):
        """Feed one request and its response; the records they gave."""
        n = len(self.out)
        self.feed(0, adu(pdu, self.tid, unit))
        self.feed(1, adu(response, self.tid, unit))
        self.tid += 1
        return self.out[n:]

    def read(self, fc, addr, qty, unit=1):
        return self.ask(struct.pack(">BHH", fc, addr, qty), bytes([fc, 2 * qty]) + bytes(2 * qty), unit)


def cover(seen, unit, fc, rw):
    c = seen.get((mb.KEY_COVERAGE, unit, fc, rw))
    return None if c is None else c.as_runs()


def test_a_range_inside_what_was_read_is_a_repeat_however_it_is_cut(kernels):
    m = Modbus(kernels)
    assert keys(m.read(3, 0, 100)) == [(1, 1, 3, 0, 100), (2, 1, 3, 0, 100)]
    for addr, qty in ((0, 10), (10, 5), (50, 50), (99, 1), (0, 100)):
        assert keys(m.read(3, addr, qty)) == []          # covered: counted, not reported
    lump = (1, 1, 3, mb.KEY_COVERED, mb.KEY_COVERED)
    assert m.seen[lump].count == 4                       # ... under the lump key of (unit, fc)
    assert m.seen_s[(2,) + lump[1:]].count == 4          # and so are their answers
    assert (1, 1, 3, 10, 5) not in m.seen
    assert m.seen[(1, 1, 3, 0, 100)].count == 2          # a range with a key of its own keeps it
    assert keys(m.read(3, 95, 10)) == [(1, 1, 3, 95, 10), (2, 1, 3, 95, 10)]   # reaches 100..104
    assert cover(m.seen, 1, 3, 0) == [(0, 105)]


def test_coverage_is_per_unit_function_code_and_direction(kernels):
    m = Modbus(kernels)
    m.read(3, 0, 10)
    assert keys(m.read(4, 0, 10))                        # input registers: another table
    assert keys(m.read(3, 0, 10, unit=2))                # another unit
    assert keys(m.read(1, 0, 10))                        # coils
    assert keys(m.ask(bytes([23]) + struct.pack(">HHHHB", 0, 2, 500, 1, 2) + b"\x00\x01", bytes([23, 4, 0, 0, 0, 0])))
    # a write to registers that were only read is new; the same write again is not
    w = struct.pack(">BHHB", 16, 0, 2, 4) + b"\x00\x01\x00\x02"
    assert keys(m.ask(w, struct.pack(">BHH", 16, 0, 2)), 0) == [(1, 1, 16, 0, 2)]
    w2 = struct.pack(">BHHB", 16, 0, 2, 4) + b"\x00\x09\x00\x09"       # other values, same registers
    assert keys(m.ask(w2, struct.pack(">BHH", 16, 0, 2))) == []
    # a new function code on the same registers is new (policy and baseline judge by it) ...
    assert keys(m.ask(struct.pack(">BHH", 6, 1, 7), struct.pack(">BHH", 6, 1, 7)), 0) == [(1, 1, 6, 1, 1)]
    assert keys(m.ask(struct.pack(">BHH", 6, 1, 8), struct.pack(">BHH", 6, 1, 8))) == []   # ... once
    assert keys(m.ask(struct.pack(">BHH", 6, 2, 7), struct.pack(">BHH", 6, 2, 7)), 0) == [(1, 1, 6, 2, 1)]
    assert cover(m.seen, 1, 16, 1) == [(0, 2)]
    assert cover(m.seen, 1, 6, 1) == [(1, 3)]
    assert cover(m.seen, 1, 3, 0) == [(0, 10)]


def test_fc23_covers_its_read_and_its_write_range(kernels):
    m = Modbus(kernels)
    rw = struct.pack(">BHHHHB", 23, 0, 4, 100, 1, 2) + b"\x00\x05"
    assert keys(m.ask(rw, bytes([23, 8]) + bytes(8)), 0) == [(1, 1, 23, 0, 4, 100, 1)]
    assert cover(m.seen, 1, 23, 0) == [(0, 4)]
    assert cover(m.seen, 1, 23, 1) == [(100, 101)]
    assert keys(m.ask(struct.pack(">BHHHHB", 23, 1, 2, 100, 1, 2) + b"\x00\x07", bytes([23, 4]) + bytes(4))) == []


def test_coverage_is_shared_by_the_connections_of_a_link(kernels):
    a = Modbus(kernels)
    a.read(3, 0, 50)
    b = Modbus(kernels, seen=a.seen, seen_s=a.seen_s)    # the HMI reconnects
    assert keys(b.read(3, 20, 10)) == []
    assert keys(b.read(3, 40, 20))


def test_coverage_runs_are_bounded_and_the_smallest_gap_is_filled(kernels):
    m = Modbus(kernels, Limits(coverage_max_runs=4))
    for addr in (0, 10, 100, 1000):
        assert keys(m.read(3, addr, 2))
    assert cover(m.seen, 1, 3, 0) == [(0, 2), (10, 12), (100, 102), (1000, 1002)]
    assert keys(m.read(3, 5000, 2))                       # a fifth run: the gap 2..10 is filled
    assert cover(m.seen, 1, 3, 0) == [(0, 12), (100, 102), (1000, 1002), (5000, 5002)]
    assert keys(m.read(3, 4, 2)) == []                    # inside the filled gap: counted as seen
    assert m.seen[(mb.KEY_COVERAGE, 1, 3, 0)].filled == 1


def test_covered_ranges_without_a_key_share_one_lump_key_per_unit_and_function_code(kernels):
    m = Modbus(kernels)
    m.read(3, 0, 100)
    m.read(4, 0, 100)
    m.read(3, 0, 100, unit=2)
    for addr in range(0, 90, 3):
        for fc, unit in ((3, 1), (4, 1), (3, 2)):
            assert keys(m.read(fc, addr, 7, unit)) == []
    lumps = sorted(k for k in m.seen if k[0] == 1 and k[3] == mb.KEY_COVERED)
    assert lumps == [(1, 1, 3, -4, -4), (1, 1, 4, -4, -4), (1, 2, 3, -4, -4)]
    assert all(m.seen[k].count == 30 for k in lumps)
    assert len(m.seen) == 3 + 3 + 3                       # own keys, coverage sets, lumps
    assert keys(m.read(3, 95, 10)) == [(1, 1, 3, 95, 10), (2, 1, 3, 95, 10)]   # reaches 100..104
    assert keys(m.read(3, 96, 2)) == [] and m.seen[(1, 1, 3, -4, -4)].count == 31


def test_writes_inside_what_was_written_are_lumped_per_function_code(kernels):
    m = Modbus(kernels)
    w = struct.pack(">BHHB", 16, 10, 4, 8) + bytes(8)
    assert keys(m.ask(w, struct.pack(">BHH", 16, 10, 4)), 0) == [(1, 1, 16, 10, 4)]
    w2 = struct.pack(">BHHB", 16, 11, 2, 4) + bytes(4)
    assert keys(m.ask(w2, struct.pack(">BHH", 16, 11, 2))) == []
    assert m.seen[(1, 1, 16, -4, -4)].count == 1
    # FC 6 on the same registers is another function code: new, then its own coverage
    assert keys(m.ask(struct.pack(">BHH", 6, 11, 1), struct.pack(">BHH", 6, 11, 1)), 0) == [(1, 1, 6, 11, 1)]
    assert (1, 1, 6, -4, -4) not in m.seen


def test_fc23_is_lumped_only_when_its_read_and_its_write_range_are_covered(kernels):
    m = Modbus(kernels)
    m.ask(struct.pack(">BHHHHB", 23, 0, 10, 100, 4, 8) + bytes(8), bytes([23, 20]) + bytes(20))
    inside = struct.pack(">BHHHHB", 23, 2, 2, 101, 1, 2) + bytes(2)
    assert keys(m.ask(inside, bytes([23, 4]) + bytes(4))) == []
    assert m.seen[(1, 1, 23, -4, -4)].count == 1
    read_out = struct.pack(">BHHHHB", 23, 8, 4, 101, 1, 2) + bytes(2)      # reads 10..11: new
    assert keys(m.ask(read_out, bytes([23, 8]) + bytes(8)), 0) == [(1, 1, 23, 8, 4, 101, 1)]
    write_out = struct.pack(">BHHHHB", 23, 2, 2, 103, 2, 4) + bytes(4)     # writes 104: new
    assert keys(m.ask(write_out, bytes([23, 4]) + bytes(4)), 0) == [(1, 1, 23, 2, 2, 103, 2)]


def test_no_lump_once_a_coverage_set_filled_a_gap(kernels):
    """A filled gap's addresses were never requested: a range touching the set then keeps a key of
    its own (the policy checker judges it), as before lump keys."""
    m = Modbus(kernels, Limits(coverage_max_runs=2))
    m.read(3, 0, 10)
    assert keys(m.read(3, 2, 2)) == [] and m.seen[(1, 1, 3, -4, -4)].count == 1
    m.read(3, 20, 10)
    m.read(3, 100, 10)                                    # a third run: the gap 10..20 is filled
    assert keys(m.read(3, 12, 2)) == [] and m.seen[(1, 1, 3, 12, 2)].count == 1
    assert keys(m.read(3, 4, 2)) == [] and m.seen[(1, 1, 3, 4, 2)].count == 1
    assert m.seen[(1, 1, 3, -4, -4)].count == 1


def test_every_message_mode_and_malformed_ranges_are_never_lumped(kernels):
    seen: dict = {}
    core = kernels("modbus").ModbusCore(seen, True, Limits(), {})
    out: list = []
    for tid, (a, q) in enumerate(((0, 10), (2, 3))):
        pdu = struct.pack(">BHH", 3, a, q)
        core.feed(0, adu(pdu, tid), 0, 12, 1.0, tid + 1, out)
    assert keys(out) == [(1, 1, 3, 0, 10), (1, 1, 3, 2, 3)]
    m = Modbus(kernels)
    m.read(3, 0, 10)
    assert keys(m.read(3, 2, 0)) == [(1, 1, 3, 2, 0), (2, 1, 3, 2, 0)]     # quantity 0: new by key
    assert not any(k[3] == mb.KEY_COVERED for k in m.seen if len(k) > 3)


def test_a_lump_key_is_a_key_under_the_cap(kernels):
    m = Modbus(kernels, Limits(link_keys_max=4))
    m.read(3, 0, 100)                                     # key + coverage set
    assert keys(m.read(3, 1, 1)) == []                    # the lump: the third key
    m.read(3, 200, 1)                                     # the fourth
    out = m.read(3, 300, 1) + m.read(3, 2, 3)             # past the cap: overflow; covered: the lump
    assert anomalies(out) == ["modbus.key_overflow"]
    assert m.seen[(1, 1, 3, -4, -4)].count == 2
    assert m.seen[(1, -2, -2, -2, -2)].count == 1


def test_lump_key_is_described():
    from otwatch.parsers.modbus.decode import describe
    assert describe((1, 1, 3, -4, -4)) == ("modbus.read_holding_registers", "read", "unit=1/holding_registers/covered")
    assert describe((2, 7, 16, -4, -4)) == ("modbus.write_multiple_registers", "write",
                                            "unit=7/holding_registers/covered")
    assert describe((1, 1, 23, -4, -4)) == ("modbus.read_write_multiple_registers", "write",
                                            "unit=1/holding_registers/covered")
    assert describe((1, 1, 1, -4, -4))[2] == "unit=1/coils/covered"


def test_coverage_sets_are_never_aggregated(kernels):
    m = Modbus(kernels)
    m.read(3, 0, 10)
    c = m.seen[(mb.KEY_COVERAGE, 1, 3, 0)]
    assert c.int_count == 0                               # the engine's flush reports int_count > 0


def test_a_register_sweep_overflows_into_one_key_with_one_anomaly(kernels):
    m = Modbus(kernels, Limits(link_keys_max=16))
    reported = 0
    for i in range(200):
        reported += len(keys(m.read(3, i * 7, 1 + i % 50), 0))
    assert len(m.seen) <= 17 and len(m.seen_s) <= 17      # cap + the overflow key
    ovf = (1, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW)
    assert m.seen[ovf].count == 200 - (16 - 1)            # 15 keys + the coverage set fill the cap
    assert (2,) + ovf[1:] in m.seen_s
    # once: the responses of overflowed requests are counted under the response overflow key
    # (the request's key with key[0] = 2), which the server side had room for
    assert anomalies(m.out).count("modbus.key_overflow") == 1
    assert reported == 15                                 # past the cap only counted
    # a known key keeps counting as before
    assert keys(m.read(3, 0, 1)) == [] and m.seen[(1, 1, 3, 0, 1)].count == 2


def test_a_unit_sweep_reports_each_new_exception_once_then_overflows(kernels):
    m = Modbus(kernels, Limits(link_keys_max=8))
    got = []
    for rnd in range(3):
        for unit in range(12):
            got += m.ask(struct.pack(">BHH", 3, rnd, 1), bytes([0x83, 0x0B]), unit=unit)
    ex = [r[4] for r in got if r[0] == REC_MSG and r[1] == 1]
    # new (unit, fc, code) keys until the server side holds 8 keys, then counted together
    assert ex == [(3, u, 3, 0x0B) for u in range(8)]
    ovf = (3, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW, mb.KEY_OVERFLOW)
    assert m.seen_s[ovf].count == 3 * 4                  # units 8..11, three rounds
    assert m.seen_s[(3, 0, 3, 0x0B)].count == 3
    assert m.core.exceptions == 36


def test_programming_functions_stay_always_detailed_unknown_ones_are_new_by_key(kernels):
    m = Modbus(kernels)
    umas = m.ask(bytes([90, 0, 2]), bytes([90, 0, 0xFE]))
    umas += m.ask(bytes([90, 0, 2]), bytes([90, 0, 0xFE]))
    assert len(keys(umas, 0)) == 2 and len(keys(umas, 1)) == 2
    unk = m.ask(bytes([99, 0, 1]), bytes([0xE3, 1])) + m.ask(bytes([99, 0, 1]), bytes([0xE3, 1]))
    assert keys(unk) == [(1, 1, 99, 0, 0), (3, 1, 99, 1)]


def test_overflow_key_is_described(kernels):
    from otwatch.parsers.modbus.decode import describe
    assert describe((1, -2, -2, -2, -2)) == ("modbus.key_overflow", "other", "overflow")


# --- MQTT ------------------------------------------------------------------------------

def _mstr(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def mqtt(first: int, body: bytes) -> bytes:
    n, v = len(body), bytearray()
    while True:
        d, n = n & 0x7F, n >> 7
        v.append(d | (0x80 if n else 0))
        if not n:
            return bytes([first]) + bytes(v) + body


def connect(level=4):
    return mqtt(0x10, _mstr(b"MQTT") + bytes([level, 2]) + b"\x00\x3c" + (b"\x00" if level == 5 else b"")
                + _mstr(b"c1"))


def publish(topic: bytes, qos=0, retain=0, pid=1, level=4, props=b""):
    vh = _mstr(topic) + (struct.pack(">H", pid) if qos else b"")
    if level == 5:
        vh += bytes([len(props)]) + props
    return mqtt(0x30 | (qos << 1) | retain, vh + b"42")


@pytest.mark.parametrize("level", [4, 5])
def test_a_publish_is_new_per_topic_and_direction_not_per_qos_or_retain(kernels, level):
    seen, seen_s, out = {}, {}, []
    core = kernels("mqtt").MQTTCore(seen, False, Limits(), seen_s)
    data = [connect(level)]
    for qos, retain in ((0, 0), (1, 0), (2, 0), (0, 1), (1, 1)):
        data.append(publish(b"plant/t1", qos, retain, level=level))
        data.append(publish(b"plant/t1", qos, retain, level=level, props=b"\x01\x01"))  # payload format
    for i, d in enumerate(data):
        core.feed(0, d, 0, len(d), 1.0 + i, i + 1, out)
    pubs = [k for k in keys(out) if k[0] == mq.MSG_PUBLISH]
    assert pubs == [(mq.MSG_PUBLISH, "plant/t1")]
    assert seen[(mq.MSG_PUBLISH, "plant/t1")].count == 10
    # the broker forwarding it to a subscriber: the other direction, new once
    sub_out = []
    d = publish(b"plant/t1", 1, level=level)
    core.feed(1, d, 0, len(d), 20.0, 20, sub_out)
    assert [k for k in keys(sub_out)] == [(mq.MSG_PUBLISH, "plant/t1")]


def test_a_topic_flood_overflows_into_one_key_with_one_anomaly(kernels):
    seen, out = {}, []
    core = kernels("mqtt").MQTTCore(seen, False, Limits(link_keys_max=10), {})
    data = [connect()] + [publish(b"flood/%d" % i) for i in range(100)]
    for i, d in enumerate(data):
        core.feed(0, d, 0, len(d), 1.0 + i, i + 1, out)
    assert len(seen) == 11
    assert seen[(mq.MSG_PUBLISH, mq.KEY_OVERFLOW)].count == 100 - 9     # CONNECT + 9 topics fill the cap
    assert anomalies(out).count("mqtt.key_overflow") == 1
    assert len([k for k in keys(out) if k[0] == mq.MSG_PUBLISH]) == 9
    assert core.messages == 101
    # known topics keep counting
    d = publish(b"flood/3")
    core.feed(0, d, 0, len(d), 500.0, 500, out)
    assert seen[(mq.MSG_PUBLISH, "flood/3")].count == 2


def test_mqtt_overflow_key_is_described():
    from otwatch.parsers.mqtt.decode import describe
    assert describe((mq.MSG_PUBLISH, mq.KEY_OVERFLOW)) == ("mqtt.publish", "publish", "overflow")


def test_publish_with_aliases_dup_and_properties_is_new_once_per_topic_and_direction(kernels):
    """MQTT 5 as paho sends it: a topic alias set with its topic then used alone, DUP on
    retransmissions, message expiry / content type / user properties that change every time,
    QoS 0/1/2 and retain alternating: one message per (topic, direction), nothing more."""
    seen, seen_s, out = {}, {}, []
    core = kernels("mqtt").MQTTCore(seen, False, Limits(), seen_s)
    frame = [0]

    def feed(side, d):
        frame[0] += 1
        core.feed(side, d, 0, len(d), float(frame[0]), frame[0], out)

    feed(0, connect(5))
    for i in range(120):
        t = b"site/%d/v" % (i % 4)
        user = b"\x26" + _mstr(b"seq") + _mstr(b"%d" % i)              # user property, new every time
        props = b"\x02\x00\x00\x00\x3c" + b"\x03" + _mstr(b"application/json") + user
        alias = b"\x23\x00" + bytes([1 + i % 4])
        first = i < 4
        qos = i % 3
        p = publish(t if first or i % 2 else b"", qos, i % 2, pid=i + 1, level=5, props=props + alias)
        if qos and i % 5 == 0:
            p = bytes([p[0] | 0x08]) + p[1:]                                # DUP
        feed(0, p)
        feed(1, publish(t, qos, 0, pid=i + 1, level=5, props=b"\x0b\x01"))  # subscription identifier
    pubs = [(r[1], r[4]) for r in out if r[0] == REC_MSG and r[4][0] == mq.MSG_PUBLISH]
    assert sorted(pubs) == sorted((side, (mq.MSG_PUBLISH, "site/%d/v" % k)) for side in (0, 1) for k in range(4))
    assert anomalies(out) == []
    assert sum(seen[(mq.MSG_PUBLISH, "site/%d/v" % k)].count for k in range(4)) == 120


def test_real_paho_publishers_are_new_once_per_topic_link_and_direction(impl):
    """The demo plant's paho publishers (3.1.1 QoS 0/1 retained; 5.0 with properties and a topic
    alias) through mosquitto: PUBLISH messages == distinct (link, direction, topic)."""
    from pathlib import Path

    from otwatch.sensor import observations as O
    from otwatch.sensor.pipeline import Pipeline, Settings

    msgs, aggs = [], set()

    class C:
        def observe(self, o):
            if isinstance(o, O.Message) and o.kind == "mqtt.publish":
                msgs.append((o.link_id, o.direction, o.key))
            elif isinstance(o, O.Aggregate) and o.kind == "mqtt.publish":
                aggs.add((o.link_id, o.direction, o.key))

    p = Pipeline([C()], Settings(implementation=impl))
    p.run_file(str(Path(__file__).resolve().parents[2] / "pcaps" / "demo-plant.pcap"))
    p.finish()
    assert len(msgs) == len(set(msgs)) == len(aggs) > 20
