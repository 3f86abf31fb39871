"""OPC UA node-keyed services (issue 12): Read, HistoryRead, Write, Call and Browse requests are
keyed by the nodes they name, on both kernels.

A request is reported when its key is new and it names a node not named before on the link
direction in that service; a Write or Call to nodes already seen is a repeat (counted); a
node-id sweep is bounded by the key cap, with one ``opcua.key_overflow``.  Requests are made
by asyncua's encoders (a real implementation), with values of every kind the kernel skips.
"""
from __future__ import annotations

import datetime
import struct

import pytest
from support.opcua_requests import browse, call, history_read, read, write

from otwatch.parsers.common import REC_ANOMALY, REC_MSG
from otwatch.parsers.limits import Limits
from otwatch.parsers.opcua import decode
from otwatch.parsers.opcua import spec as ua

WRITE, CALL, READ, BROWSE, HREAD = 673, 712, 631, 527, 664


class Link:
    """One link's two tally dicts and a connection on them (plaintext channel)."""

    def __init__(self, kernels, limits=Limits()):
        self.seen, self.seen_s = {}, {}
        self.core = kernels("opcua").OPCUACore(self.seen, False, limits, self.seen_s)
        self.core.port_bound = True
        self.out = []
        self.frame = 1

    def send(self, msg: bytes, side=0):
        n = len(self.out)
        self.core.feed(side, msg, 0, len(msg), float(self.frame), self.frame, self.out)
        self.frame += 1
        return self.out[n:]


def msgs(recs):
    return [r[4] for r in recs if r[0] == REC_MSG]


def anomalies(recs):
    return [r[4] for r in recs if r[0] == REC_ANOMALY]


def tallies(seen, tid):
    return {k: v.count for k, v in seen.items() if len(k) == 4 and k[1] == tid}


def test_write_to_nodes_already_seen_is_a_repeat(kernels):
    ln = Link(kernels)
    (k1,) = msgs(ln.send(write([("ns=2;i=10", 1.5)])))
    assert k1[:3] == (ua.MSG_SERVICE, WRITE, 1) and decode.describe(k1) == ("opcua.write_request", "write",
                                                                           "nodes=1")
    assert msgs(ln.send(write([("ns=2;i=10", 99.0)]))) == []          # another value: the same key
    assert msgs(ln.send(write([("ns=2;i=10", 1.5), ("ns=2;i=11", 2)]))) != []   # i=11 is new
    assert msgs(ln.send(write([("ns=2;i=11", 7)]))) == []             # new key, known node: counted
    assert msgs(ln.send(write([("ns=2;i=11", 7)], attribute=13))) == []   # Value attribute is 13: same
    assert msgs(ln.send(write([("ns=2;i=11", 7)], attribute=3))) != []    # BrowseName: another node key
    t = tallies(ln.seen, WRITE)
    assert sum(t.values()) == 6 and t[k1] == 2 and len(t) == 4
    assert ln.seen[(ua.KEY_NODES, WRITE)].as_list() != []


def test_call_keyed_by_object_and_method(kernels):
    ln = Link(kernels)
    assert msgs(ln.send(call("ns=2;i=1", "ns=2;i=5", [1, "start"])))
    assert not msgs(ln.send(call("ns=2;i=1", "ns=2;i=5", [2, "stop"])))
    assert msgs(ln.send(call("ns=2;i=1", "ns=2;i=6", [])))
    assert msgs(ln.send(call("ns=2;i=2", "ns=2;i=5", [])))


@pytest.mark.parametrize("build, tid", [(read, READ), (browse, BROWSE), (history_read, HREAD)])
def test_reads_browse_history_keyed_by_nodes(kernels, build, tid):
    ln = Link(kernels)
    assert msgs(ln.send(build(["ns=2;s=Line1.Temp", "i=2258"])))
    assert not msgs(ln.send(build(["ns=2;s=Line1.Temp", "i=2258"])))
    assert not msgs(ln.send(build(["i=2258"])))                  # a subset: counted under its own key
    assert msgs(ln.send(build(["i=2258", "ns=3;g=72962b91-fa75-4ae6-8d28-b404dc7daf63"])))
    assert len(tallies(ln.seen, tid)) == 3


VALUES = [
    True, -5, 2 ** 40, 1.25, "text", b"\x00\x01bytes", datetime.datetime(2026, 12, 5, 13, 0),
    [1, 2, 3], ["a", "b"], [1.5, 2.5], "nodeid", "qualified", "localized", "variant-array", "guid",
    "status", "extension",
]


@pytest.mark.parametrize("value", VALUES, ids=[str(i) for i in range(len(VALUES))])
def test_write_values_of_every_kind_parse(kernels, value):
    """The kernel skips each DataValue (Variant of every built-in type, arrays, timestamps)
    and reaches the next WriteValue: two nodes, not unparsed."""
    ln = Link(kernels)
    (k,) = msgs(ln.send(write([("ns=2;i=10", value), ("ns=2;s=after", 1)], timestamps=True)))
    assert k[2] == 2, k


def test_unparsed_node_list(kernels):
    ln = Link(kernels)
    m = bytearray(write([("ns=2;i=10", 1.5)]))
    struct.pack_into("<i", m, len(m) - 4 - 0, 0)      # break the tail: not a valid DataValue end
    m = bytes(m[:-3])                                   # and cut it short
    m = m[:4] + struct.pack("<I", len(m)) + m[8:]
    (k,) = msgs(ln.send(m))
    assert k == (ua.MSG_SERVICE, WRITE, ua.KEY_UNPARSED, 0) and decode.describe(k)[2] == "unparsed"
    assert msgs(ln.send(m)) == []


def test_node_id_sweep_is_bounded_by_the_key_cap(kernels):
    cap = 16
    ln = Link(kernels, Limits(link_keys_max=cap))
    reported = 0
    for i in range(200):
        reported += len(msgs(ln.send(read([f"ns=2;i={1000 + 2 * i}", f"ns=2;i={1001 + 2 * i}"]))))
    assert reported <= cap
    assert anomalies(ln.out) == ["opcua.key_overflow"]
    assert len(ln.seen) <= cap + 1
    over = ln.seen[(ua.MSG_SERVICE, READ, ua.KEY_OVERFLOW, ua.KEY_OVERFLOW)]
    assert over.count == 200 - (cap - 1)      # cap - 1 keys and the node set fill the dict
    assert decode.describe((ua.MSG_SERVICE, READ, -2, -2))[2] == "overflow"
    assert len(ln.seen[(ua.KEY_NODES, READ)].nodes) <= cap


def test_compiled_equals_pure():
    from otwatch import ext
    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    runs = []
    for impl in ("pure", "compiled"):
        ln = Link(lambda name: ext.load(name, impl), Limits(link_keys_max=12))
        for i in range(30):
            ln.send(write([(f"ns=2;i={i % 7}", VALUES[i % 7]), (f"ns=2;s=n{i % 5}", i)], timestamps=True))
            ln.send(call("ns=2;i=1", f"ns=2;i={i % 4}", [i, "x"]))
            ln.send(read([f"ns=2;i={i}"]))
        runs.append((ln.out, {k: v.as_list() for k, v in ln.seen.items()}))
    assert runs[0] == runs[1]
