"""The pipeline end to end on small crafted captures."""
from __future__ import annotations

import collections
import os
import pathlib
import pty
import struct
import subprocess
import sys
from dataclasses import replace

import pytest

from support import capbuild as cb
from otwatch.parsers.limits import DEFAULT_LIMITS
from otwatch.sensor import observations as O
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
C, S, CM, SM = "10.0.0.1", "10.0.0.2", "02:00:00:00:00:01", "02:00:00:00:00:02"


class Collect:
    def __init__(self):
        self.obs = []

    def observe(self, o):
        self.obs.append(o)


def tcp(src, dst, sport, dport, seq, flags, payload=b"", smac=CM, dmac=SM):
    return cb.eth(smac, dmac, 0x0800, cb.ipv4(src, dst, 6, cb.tcp(sport, dport, seq, 0, flags, payload)))


def conversation(dport, client_payloads, server_payloads):
    pk = [tcp(C, S, 40000, dport, 100, "S"), tcp(S, C, dport, 40000, 900, "SA", smac=SM, dmac=CM),
          tcp(C, S, 40000, dport, 101, "A")]
    cs, ss = 101, 901
    for a, b in zip(client_payloads, server_payloads):
        pk.append(tcp(C, S, 40000, dport, cs, "PA", a))
        cs += len(a)
        pk.append(tcp(S, C, dport, 40000, ss, "PA", b, smac=SM, dmac=CM))
        ss += len(b)
    return [(1_700_000_000 + i * 0.01, p) for i, p in enumerate(pk)]


def run(tmp_path, pkts, **settings):
    f = tmp_path / "x.pcap"
    f.write_bytes(cb.pcap(pkts))
    c = Collect()
    p = Pipeline([c], Settings(**settings))
    p.run_file(str(f))
    p.finish()
    return c.obs, p.stats()


def test_http_on_port_502_is_not_decoded_as_modbus(tmp_path):
    obs, stats = run(tmp_path, conversation(502, [b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n"],
                                            [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]))
    assert not [o for o in obs if type(o) is O.Message]
    assert [o.id for o in obs if type(o) is O.Anomaly] == ["dispatch.rejected"]
    (end,) = [o for o in obs if type(o) is O.FlowEnd]
    assert end.protocol == "none"
    assert stats["dispatch.rejected.modbus"] == 1


def test_modbus_on_an_unusual_port_is_found_by_content(tmp_path):
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    obs, stats = run(tmp_path, conversation(5020, [req], [rsp]))
    msgs = [o for o in obs if type(o) is O.Message]
    assert [(m.kind, m.direction) for m in msgs] == [("modbus.read_holding_registers", "request"),
                                                      ("modbus.read_holding_registers", "response")]
    assert msgs[1].event.values == (1, 2)


def test_port_map_setting(tmp_path):
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    obs, _ = run(tmp_path, conversation(5020, [req], [rsp]), ports={5020: "modbus"})
    (start,) = [o for o in obs if type(o) is O.FlowStart]
    assert start.protocol == "modbus"


def test_repeats_are_counted_not_reported(tmp_path):
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    obs, _ = run(tmp_path, conversation(502, [req] * 50, [rsp] * 50))
    kinds = collections.Counter(type(o).__name__ for o in obs)
    assert kinds["Message"] == 2
    aggs = [o for o in obs if type(o) is O.Aggregate]
    assert sorted(a.count for a in aggs) == [50, 50]
    obs, _ = run(tmp_path, conversation(502, [req] * 50, [rsp] * 50), detail_all=True)
    assert sum(1 for o in obs if type(o) is O.Message) == 100


def test_progress_bar_on_a_terminal():
    master, slave = pty.openpty()
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-m", "otwatch.sensor", "analyze", "--no-inventory",
                          str(ROOT / "pcaps" / "demo-plant.pcap")], stdout=subprocess.PIPE, stderr=slave, env=env)
    out, _ = p.communicate(timeout=120)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert p.returncode == 0
    assert b"pkt/s" in err and b"100%" in err and b"565.3/565.3 kB" in err     # rich: rate, percent, bytes
    quiet = subprocess.run([sys.executable, "-m", "otwatch.sensor", "analyze", "--no-inventory", "-q",
                            str(ROOT / "pcaps" / "demo-plant.pcap")], capture_output=True, timeout=120)
    assert quiet.stdout == b"" and quiet.stderr == b""


# --- the source: one reused buffer ------------------------------------------------------


def _records_of(tmp_path, blob: bytes, chunk: int):
    """Observations of *blob* analysed with the source's buffer set to *chunk* bytes."""
    from otwatch.sensor import source

    f = tmp_path / "c.pcap"
    f.write_bytes(blob)
    old = source.CHUNK
    source.CHUNK = chunk
    try:
        c = Collect()
        p = Pipeline([c], Settings())
        p.run_file(str(f))
        p.finish()
    finally:
        source.CHUNK = old
    return c.obs


def test_any_buffer_size_gives_the_same_observations(tmp_path):
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    pkts = conversation(502, [req] * 20, [rsp] * 20)
    pkts.append((1_700_000_001.0, tcp(C, S, 40001, 80, 1, "PA", b"x" * 3000)))     # a record larger than 2 KiB
    blob = cb.pcap(pkts)
    whole = _records_of(tmp_path, blob, 1 << 22)
    for chunk in (64, 100, 1000, 2048):
        assert _records_of(tmp_path, blob, chunk) == whole


def test_chunk_reader_keeps_the_unconsumed_rest_and_grows_for_a_large_record():
    import io

    from otwatch.sensor.source import ChunkReader

    r = ChunkReader(io.BytesIO(bytes(range(200))), size=64)
    assert r.fill() and r.end == 64
    r.consume(60)                               # 4 bytes left, moved to the front
    assert bytes(r.buf[:r.end]) == bytes(range(60, 64))
    assert r.fill() and bytes(r.buf[:r.end]) == bytes(range(60, 124))
    r.consume(0)                                # nothing consumed: a record larger than the buffer
    assert r.fill() and len(r.buf) == 128 and bytes(r.buf[:r.end]) == bytes(range(60, 188))
    r.consume(r.end)
    assert r.fill() and bytes(r.buf[:r.end]) == bytes(range(188, 200))
    r.consume(r.end)
    assert not r.fill() and r.end == 0


def test_repeated_dns_answers_give_their_names_every_time(tmp_path):
    def answer(qid):
        q = b"\x04plc1\x05plant\x00\x00\x01\x00\x01"
        a = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x07"
        return qid.to_bytes(2, "big") + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q + a

    pkts = [(1_700_000_000 + i, cb.eth(SM, CM, 0x0800, cb.ipv4(S, C, 17, cb.udp(53, 5000 + i, answer(i)))))
            for i in range(5)]
    obs, _ = run(tmp_path, pkts)
    names = [(o.name, o.ip) for o in obs if type(o) is O.NameSeen]
    assert names == [("plc1.plant", "10.0.0.7")] * 5


def test_a_protocol_decoder_is_loaded_when_first_needed(tmp_path):
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    f = tmp_path / "x.pcap"
    f.write_bytes(cb.pcap(conversation(502, [req], [rsp])))
    p = Pipeline([Collect()], Settings())
    assert p.decoders.by_app == {}
    p.run_file(str(f))
    p.finish()
    assert list(p.decoders.by_app) == [1]          # Modbus only: no MQTT or OPC UA decoder loaded


def _flood(n_unsolicited: int):
    """One Modbus flow: a paired read (the kernel is confirmed), then *n* responses nobody asked for."""
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    pk = conversation(502, [req], [rsp])
    t0, ss = pk[-1][0], 901 + len(rsp)
    for i in range(n_unsolicited):
        orphan = struct.pack("!HHHBB", 0x1000 + i, 0, 7, 1, 3) + bytes.fromhex("0400010002")
        pk.append((t0 + 0.001 * (i + 1), tcp(S, C, 502, 40000, ss, "PA", orphan, smac=SM, dmac=CM)))
        ss += len(orphan)
    return pk


@pytest.mark.parametrize("report,rate", [(256, 1000), (10, 7)])
def test_an_anomaly_flood_is_sampled_and_summed_up(tmp_path, impl, report, rate):
    """A peer raising one anomaly per packet yields `report` of them, then one in `rate`, and a
    summary at the flow's end; the counters still count every one (no silent loss)."""
    n = report + 2 * rate + 3
    limits = replace(DEFAULT_LIMITS, anomalies_reported_per_flow=report, anomaly_sample_rate=rate)
    obs, stats = run(tmp_path, _flood(n), limits=limits, implementation=impl)
    anomalies = [o for o in obs if type(o) is O.Anomaly]
    unsolicited = [a for a in anomalies if a.id == "modbus.unsolicited_response"]
    assert len(unsolicited) == report + 2
    assert all("sampled" not in a.detail for a in unsolicited[:report])
    assert [a.detail.split("[", 1)[1] for a in unsolicited[report:]] == [
        f"sampled: 1 of {rate} reported; {report + rate} so far on this flow]",
        f"sampled: 1 of {rate} reported; {report + 2 * rate} so far on this flow]"]
    (summary,) = [a for a in anomalies if a.id == "flow.anomalies_suppressed"]
    assert summary.detail == f"modbus.unsolicited_response: {n - report - 2} of {n} not reported"
    assert summary.protocol == "modbus" and summary.side == "" and summary.flow_id == unsolicited[0].flow_id
    assert stats["anomaly.modbus.unsolicited_response"] == n
    assert stats["anomaly.suppressed"] == n - report - 2


def _flood_from(cport: int, n: int, t0: float):
    """Like _flood, on client port *cport*, starting at *t0*, the flow closed at the end."""
    req = bytes.fromhex("000100000006010300000002")
    rsp = bytes.fromhex("00010000000701030400010002")
    pk = [tcp(C, S, cport, 502, 100, "S"), tcp(S, C, 502, cport, 900, "SA", smac=SM, dmac=CM),
          tcp(C, S, cport, 502, 101, "A"), tcp(C, S, cport, 502, 101, "PA", req),
          tcp(S, C, 502, cport, 901, "PA", rsp, smac=SM, dmac=CM)]
    ss = 901 + len(rsp)
    for i in range(n):
        orphan = struct.pack("!HHHBB", 0x1000 + i, 0, 7, 1, 3) + bytes.fromhex("0400010002")
        pk.append(tcp(S, C, 502, cport, ss, "PA", orphan, smac=SM, dmac=CM))
        ss += len(orphan)
    pk += [tcp(C, S, cport, 502, 101 + len(req), "FA"), tcp(S, C, 502, cport, ss, "FA", smac=SM, dmac=CM)]
    return [(t0 + 0.001 * i, p) for i, p in enumerate(pk)]


def test_a_link_reports_a_bounded_number_of_anomalies_an_interval_whatever_its_flows(tmp_path, impl):
    """A peer that reconnects gets no fresh per-flow allowance: the flows of one link report at most
    anomalies_reported_per_link_interval an interval together; the rest are counted and each flow's
    end says how many of its own were not reported.  The next interval has a budget again."""
    limits = replace(DEFAULT_LIMITS, anomalies_reported_per_flow=10, anomaly_sample_rate=1000,
                     anomalies_reported_per_link_interval=25)
    t0 = 1_700_000_000.0
    pkts = []
    for k in range(4):                       # four connections of 15 anomalies each, 1 s apart
        pkts += _flood_from(41000 + k, 15, t0 + k)
    pkts += _flood_from(41010, 15, t0 + 100)  # and one more in a later interval
    obs, stats = run(tmp_path, pkts, limits=limits, implementation=impl, interval=60.0)
    anomalies = [o for o in obs if type(o) is O.Anomaly]
    by_flow = collections.Counter(a.flow_id for a in anomalies if a.id == "modbus.unsolicited_response")
    flows = sorted(by_flow)
    # 10 + 10 + 5 within the first interval's 25, then nothing; 10 again in the next interval
    assert [by_flow[f] for f in flows] == [10, 10, 5, 10]
    summaries = {a.flow_id: a.detail for a in anomalies if a.id == "flow.anomalies_suppressed"}
    assert len(summaries) == 5
    hidden = [int(d.split(": ")[1].split(" of ")[0]) for _, d in sorted(summaries.items())]
    assert hidden == [5, 5, 10, 15, 5] and all(d.endswith("of 15 not reported") for d in summaries.values())
    assert stats["anomaly.modbus.unsolicited_response"] == 75
    assert stats["anomalies.over_link_budget"] == 10 + 5    # what the per-flow budget alone would have reported
    assert stats["anomaly.suppressed"] == 75 - 35


def test_anomalies_below_the_threshold_are_all_reported(tmp_path, impl):
    obs, stats = run(tmp_path, _flood(40), implementation=impl)
    ids = [o.id for o in obs if type(o) is O.Anomaly]
    assert ids == ["modbus.unsolicited_response"] * 40
    assert "anomaly.suppressed" not in stats


def _stream(dport, segments):
    """A TCP conversation from (side, payload) segments, in order."""
    pk = [tcp(C, S, 40000, dport, 100, "S"), tcp(S, C, dport, 40000, 900, "SA", smac=SM, dmac=CM),
          tcp(C, S, 40000, dport, 101, "A")]
    seq = {0: 101, 1: 901}
    for side, data in segments:
        if side == 0:
            pk.append(tcp(C, S, 40000, dport, seq[0], "PA", data))
        else:
            pk.append(tcp(S, C, dport, 40000, seq[1], "PA", data, smac=SM, dmac=CM))
        seq[side] += len(data)
    return [(1_700_000_000 + i * 0.01, p) for i, p in enumerate(pk)]


def test_tallies_are_kept_per_direction(tmp_path, impl):
    """An MQTT client that only ever received topic a/b from the broker and then publishes it: its
    first PUBLISH is a new message, and the aggregates tell the two directions apart."""
    connect = bytes.fromhex("100f00044d5154540402003c0003636964")
    connack = bytes.fromhex("20020000")
    publish = bytes.fromhex("30060003612f6278")        # QoS 0, topic a/b, payload "x"
    segs = [(0, connect), (1, connack)] + [(1, publish)] * 3 + [(0, publish)] * 2
    obs, _ = run(tmp_path, _stream(1883, segs), implementation=impl)
    pubs = [(m.direction, m.frame) for m in obs if type(m) is O.Message and m.kind == "mqtt.publish"]
    assert pubs == [("response", 6), ("request", 9)]
    aggs = {(a.direction, a.kind): a.count for a in obs if type(a) is O.Aggregate}
    assert aggs[("response", "mqtt.publish")] == 3 and aggs[("request", "mqtt.publish")] == 2
    assert aggs[("request", "mqtt.connect")] == 1 and aggs[("response", "mqtt.connack")] == 1
