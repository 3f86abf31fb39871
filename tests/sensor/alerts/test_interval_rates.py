"""What the interval counts show (sensor/alerts/rates.py) and a second Modbus master (sensor/alerts/masters.py).

Captures with real TCP framing (tests/sensor/alerts/modbus_wire.py) run through the whole pipeline on both
kernels with 10 s intervals.  Each attack case was missed by the detectors before (a flood on a connection
that lived long before it was averaged over its life; a read sweep answered by exception 2 reached the
detectors as one exception message; a command injection needed a baseline), and each benign case is the near
miss of its rule.
"""
from __future__ import annotations

from .modbus_wire import Session, alerts, exception, frames_between, read, write
from .modbus_wire import write_coil, write_register

PLC, HMI, EWS, ROGUE, HMI2 = "10.70.0.11", "10.70.0.21", "10.70.0.31", "10.70.0.66", "10.70.0.22"
GW_IP = "10.70.0.12"


def _poll(s: Session, t0: float, t1: float, period: float, unit: int = 1, pair=None) -> None:
    t = t0
    while t < t1:
        s.add(t, unit, pair or read(3, 0, 10))
        t += period


def _rule(al, rule):
    return [a for a in al if a.rule == rule]


def test_a_flood_on_a_connection_that_lived_long_before_it_is_alerted_inside_the_flood(impl, tmp_path):
    rogue = Session(ROGUE, PLC, 41000)
    _poll(rogue, 0.5, 40.0, 1.0)                                 # a quiet client for 40 s ...
    for i in range(6000):                                        # ... then 6,000 requests in 6 s (CIC "query flooding")
        rogue.add(40.0 + i * 0.001, 1, read(3, 0, 10))
    cap = tmp_path / "flood.pcap"
    write(cap, [rogue])
    (a,) = _rule(alerts(cap, impl), "dos.message_flood")
    inside = frames_between(cap, 40.0, 46.1)
    assert a.src == ROGUE and a.dst == PLC and a.protocol == "modbus"
    assert a.evidence and all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_a_fast_steady_master_is_no_flood(impl, tmp_path):
    hmi = Session(HMI, PLC, 41001)
    _poll(hmi, 0.5, 60.0, 1 / 150)                               # bench/make_varied.py's master: 150 requests/s
    late = Session(EWS, PLC, 41002)
    _poll(late, 58.0, 80.0, 1 / 150)                             # starts 2 s before an interval ends
    cap = tmp_path / "steady.pcap"
    write(cap, [hmi, late])
    assert _rule(alerts(cap, impl), "dos.message_flood") == []


def test_a_read_sweep_answered_by_exceptions_is_a_register_sweep(impl, tmp_path):
    hmi = Session(HMI, PLC, 41003)
    _poll(hmi, 0.5, 30.0, 0.5)
    rogue = Session(ROGUE, PLC, 41004)
    blocks = [50 + 10 * k for k in (7, 2, 11, 0, 5, 13, 1, 9, 3, 12, 6, 4, 10, 8)]   # past the map, in no order
    for i, a in enumerate(blocks):
        rogue.add(12.0 + 0.05 * i, 1, exception(3, a, 10))
    cap = tmp_path / "sweep.pcap"
    write(cap, [hmi, rogue])
    (a,) = _rule(alerts(cap, impl), "recon.modbus_register_sweep")
    inside = frames_between(cap, 12.0, 12.0 + 0.05 * len(blocks))
    assert a.src == ROGUE and a.details["exceptions"] == len(blocks)
    assert a.evidence and all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_a_poll_of_a_missing_register_is_no_sweep(impl, tmp_path):
    hmi = Session(HMI, PLC, 41005)
    t = 0.5
    while t < 60.0:                                               # every cycle: a good block and a missing one
        hmi.add(t, 1, read(3, 0, 10))
        hmi.add(t + 0.01, 1, exception(3, 500, 2))
        t += 0.25
    cap = tmp_path / "bad-poll.pcap"
    write(cap, [hmi])
    assert _rule(alerts(cap, impl), "recon.modbus_register_sweep") == []


def test_a_second_master_writing_to_a_commanded_unit_is_a_rogue_writer(impl, tmp_path):
    hmi = Session(HMI, PLC, 41006)
    _poll(hmi, 0.5, 40.0, 0.5)
    _poll(hmi, 0.6, 40.0, 0.5, unit=2)
    hmi.add(5.0, 1, write_register(1, 1200))                      # the HMI commands unit 1
    hmi2 = Session(HMI2, PLC, 41007, mac_tail=2)                  # a redundant HMI, there from the start
    _poll(hmi2, 0.7, 40.0, 1.0)
    hmi2.add(30.0, 1, write_register(1, 1250))
    ews = Session(EWS, PLC, 41008, mac_tail=3)                    # an engineering station: first to write unit 2
    ews.add(10.0, 2, read(3, 40, 4))
    ews.add(10.2, 2, write_register(40, 7))
    rogue = Session(ROGUE, PLC, 41009, mac_tail=4)
    rogue.add(20.0, 1, read(3, 0, 1))
    rogue.add(20.5, 1, write_register(1, 65535))
    rogue.add(20.7, 1, write_coil(20))
    cap = tmp_path / "writers.pcap"
    write(cap, [hmi, hmi2, ews, rogue])
    al = _rule(alerts(cap, impl), "command.modbus_rogue_writer")
    assert [(a.src, a.dst, a.count) for a in al] == [(ROGUE, PLC, 2)]
    inside = frames_between(cap, 20.5, 20.71)
    assert all(e.frame in inside for e in al[0].evidence) and al[0].details["first_writer"] == HMI


def test_a_surge_over_a_link_s_own_rate_is_a_flood_below_the_absolute_rate(impl, tmp_path):
    """400 requests/s (800 messages/s, under ``rate``) on a connection that polled twice a second for a
    minute: 200 times its own rate.  The connection's average (270 messages/s over 90 s) hid it before."""
    client = Session(HMI, PLC, 41010)
    _poll(client, 0.25, 60.0, 0.5)
    _poll(client, 60.0, 90.0, 1 / 400)
    cap = tmp_path / "surge.pcap"
    write(cap, [client])
    (a,) = _rule(alerts(cap, impl), "dos.message_flood")
    assert a.details["rate"] < 1000 and a.details["earlier_rate"] < 30 and a.count >= 3
    inside = frames_between(cap, 60.0, 90.1)
    assert all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_a_settled_master_writing_a_burst_of_new_targets_is_a_write_burst(impl, tmp_path):
    hmi = Session(HMI, PLC, 41011)
    _poll(hmi, 0.5, 100.0, 0.5)
    hmi.add(30.0, 1, write_register(1, 1200))                     # a setpoint now and then
    for i in range(20):                                           # then 20 set-points in 2 s, 70 s in
        hmi.add(70.0 + 0.1 * i, 1, write_register(10 + i, 65535))
    ews = Session(EWS, PLC, 41012, mac_tail=3)                    # writes 20 targets as soon as it appears
    for i in range(20):
        ews.add(80.0 + 0.1 * i, 2, write_register(30 + i, 7))
    cap = tmp_path / "burst.pcap"
    write(cap, [hmi, ews])
    al = _rule(alerts(cap, impl), "command.modbus_write_burst")
    assert [(a.src, a.count) for a in al] == [(HMI, 20)]          # the first 16 when declared, then each
    inside = frames_between(cap, 70.0, 72.01)
    assert all(e.frame in inside for e in al[0].evidence)


def test_a_master_writing_varied_targets_all_along_is_no_burst(impl, tmp_path):
    mbc = Session(HMI, PLC, 41013)
    for i in range(1500):                                          # bench/make_varied.py's: random writes, always
        mbc.add(0.5 + 0.06 * i, 1 + i % 2, write_register((i * 7919) % 2000, i & 0xFFFF))
    cap = tmp_path / "varied-writes.pcap"
    write(cap, [mbc])
    assert _rule(alerts(cap, impl), "command.modbus_write_burst") == []


def test_a_burst_inside_a_default_interval_on_a_polling_connection_is_a_flood(impl, tmp_path):
    """The HMI's own connection polls unit 1 twice a second for a minute, and 15 s in it reads unit 2 12,000
    times in 10 s (1,200 requests/s).  With the default 60 s interval the connection's count (12,120
    requests, 24,240 messages) averages 404 messages/s over the interval, under ``rate``, and the link has no
    earlier interval to surge over: missed before.  Judged over the active span of the keys new in the
    interval (unit 2's reads: 10 s), it is a flood, with evidence inside the burst."""
    hmi = Session(HMI, PLC, 41014)
    _poll(hmi, 0.25, 59.0, 0.5)
    _poll(hmi, 15.0, 25.0, 1 / 1200, unit=2)
    cap = tmp_path / "burst-flood.pcap"
    write(cap, [hmi])
    (a,) = _rule(alerts(cap, impl, interval=60.0), "dos.message_flood")
    assert a.src == HMI and a.dst == PLC and a.details["burst_messages"] >= 12000
    inside = frames_between(cap, 15.0, 25.1)
    assert a.evidence and all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_new_keys_spread_over_the_interval_on_a_polling_connection_are_no_flood(impl, tmp_path):
    """The near miss: a master that reads a new register block every 3 ms across the whole interval (as
    bench/make_varied.py's random readers do) alongside its poll: 20,000 new keys over 60 s, not a burst."""
    hmi = Session(HMI, PLC, 41015)
    _poll(hmi, 0.25, 59.0, 0.5)
    t, i = 0.3, 0
    while t < 59.0:
        hmi.add(t, 1, read(3, 100 + (i * 37) % 9000, 2 + i % 7))
        t, i = t + 0.003, i + 1
    cap = tmp_path / "spread.pcap"
    write(cap, [hmi])
    assert _rule(alerts(cap, impl, interval=60.0), "dos.message_flood") == []


def test_a_unit_sweep_past_the_source_s_key_budget_names_its_gateway_with_evidence_inside(impl, tmp_path):
    """A rogue that first read 300 register blocks (past the engine's 256 new keys a source reports one by one
    in an interval) then tries units 5-247 behind the gateway, answered 'gateway target failed' (exception 11):
    the scan detector gets only the source's summary (no server, the interval's first frame).  The link's
    aggregates name the gateway and the sweep's own requests."""
    hmi = Session(HMI, GW_IP, 41016)
    _poll(hmi, 0.25, 50.0, 0.5)
    rogue = Session(ROGUE, GW_IP, 41017, mac_tail=4)
    for i in range(300):
        rogue.add(5.0 + 0.01 * i, 1, read(3, 10 * i, 10))
    for i, unit in enumerate(range(5, 248)):
        rogue.add(20.0 + 0.005 * i, unit, exception(3, 0, 1, code=11))
    cap = tmp_path / "unit-sweep.pcap"
    write(cap, [hmi, rogue])
    al = [a for a in _rule(alerts(cap, impl, interval=60.0), "recon.modbus_unit_sweep") if a.dst == GW_IP]
    assert [(a.src, a.dst) for a in al] == [(ROGUE, GW_IP)]
    inside = frames_between(cap, 20.0, 21.3)
    assert al[0].evidence and all(e.frame in inside for e in al[0].evidence), [e.frame for e in al[0].evidence]


def test_a_master_polling_forty_units_past_the_key_budget_is_no_unit_sweep(impl, tmp_path):
    hmi = Session(HMI, GW_IP, 41018)
    t = 0.25
    while t < 50.0:                                                # 40 RTUs, 8 blocks each: 320 keys
        for unit in range(1, 41):
            for b in range(8):
                hmi.add(t + 0.0005 * (8 * unit + b), unit, read(3, 10 * b, 10))
        t += 2.0
    cap = tmp_path / "forty-units.pcap"
    write(cap, [hmi])
    assert _rule(alerts(cap, impl, interval=60.0), "recon.modbus_unit_sweep") == []


def test_a_flood_of_the_connection_s_own_polled_key_is_a_flood_inside_a_default_interval(impl, tmp_path):
    """The HMI polls unit 1's HR 0+10 twice a second for a minute and, 20 s in, reads that same block 4,000
    times in 3 s (CIC Modbus 2023's query flooding from a compromised master): no key is new, the interval's
    average is ~140 messages/s and the link has no earlier interval.  Missed before; the kernels' busiest
    second of the key (``interval_peak``) shows it, with evidence inside the flood."""
    hmi = Session(HMI, PLC, 41020)
    _poll(hmi, 0.25, 59.0, 0.5)
    _poll(hmi, 20.0, 23.0, 3.0 / 4000)
    cap = tmp_path / "own-key-flood.pcap"
    write(cap, [hmi])
    (a,) = _rule(alerts(cap, impl, interval=60.0), "dos.message_flood")
    assert a.src == HMI and a.dst == PLC and a.details["rate"] < 1000
    assert a.details["peak_messages"] >= 8000 and a.details["peak_per_second"] >= 2000
    inside = frames_between(cap, 20.0, 23.1)
    assert a.evidence and all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_a_flood_of_reads_inside_the_registers_already_read_is_a_flood(impl, tmp_path):
    """Reads inside the block a master polls have no key of their own (the Modbus lump key, counted under
    ``(unit, fc)``): a flood of them on a polling connection, after one such read early on, adds no new key
    either.  Judged by the lump key's busiest second."""
    hmi = Session(HMI, PLC, 41021)
    _poll(hmi, 0.25, 59.0, 0.5, pair=read(3, 0, 50))
    hmi.add(5.1, 1, read(3, 7, 3))                               # the lump key exists from 5 s on
    for i in range(5000):                                        # 5,000 reads in 4 s, each inside HR 0+50
        hmi.add(30.0 + i * 0.0008, 1, read(3, i % 40, 1 + i % 9))
    cap = tmp_path / "covered-flood.pcap"
    write(cap, [hmi])
    (a,) = _rule(alerts(cap, impl, interval=60.0), "dos.message_flood")
    assert a.src == HMI and a.details["peak_per_second"] >= 1000
    inside = frames_between(cap, 30.0, 34.1)
    assert a.evidence and all(e.frame in inside for e in a.evidence), [e.frame for e in a.evidence]


def test_a_short_burst_of_a_polled_key_and_fast_keys_are_no_flood(impl, tmp_path):
    """The near misses: a master that catches up with 1,200 reads of its poll in one second after a
    stall (2,400 messages: a peak, but under ``messages``), and a PLC-to-PLC exchange polling four blocks
    at 100 Hz each for a minute (each key's busiest second 100 requests and 100 responses: 800/s, under
    ``rate``, which the interval's average also says)."""
    hmi = Session(HMI, PLC, 41022)
    _poll(hmi, 0.25, 59.0, 0.5)
    _poll(hmi, 30.0, 31.0, 1.0 / 1200)
    plc = Session(EWS, PLC, 41023)
    for k in range(4):
        _poll(plc, 0.3 + k * 0.001, 59.0, 0.01, pair=read(3, 100 * k, 10))
    cap = tmp_path / "near-peaks.pcap"
    write(cap, [hmi, plc])
    assert _rule(alerts(cap, impl, interval=60.0), "dos.message_flood") == []


class _Aggregates:
    """Every ``Aggregate`` of a run (one by one: no ``observe_aggregates``)."""

    def __init__(self):
        self.seen = []

    def observe(self, o) -> None:
        if o.type == "aggregate":
            self.seen.append(o)


def _aggregates(cap, impl: str, interval: float) -> list:
    from otwatch.sensor.pipeline import Pipeline, Settings

    got = _Aggregates()
    p = Pipeline([got], Settings(implementation=impl, interval=interval))
    p.run_file(str(cap))
    p.finish()
    return got.seen


def test_the_kernels_keep_each_key_s_busiest_second_per_interval(impl, tmp_path):
    """A poll every 0.4 s from 0.5 s on and ten more reads of the same block at 4.95-5.04 s: the windows start
    at a message one second or more after the current window's start (0.5, 1.7, 2.9, 4.1 …), so the busiest is
    [4.1, 5.1): three polls and the ten reads; its frame is the window's 8th message (the 2^k-th: the burst's,
not the poll's at the window's edges), the read at 4.99 s.  Both directions, both kernels, and
    compiled == pure in every field, in 2 s intervals too (where an interval's flush restarts the count)."""
    hmi = Session(HMI, PLC, 41024)
    _poll(hmi, 0.5, 9.9, 0.4)
    _poll(hmi, 4.95, 5.045, 0.01)
    cap = tmp_path / "peaks.pcap"
    write(cap, [hmi])
    reads = [a for a in _aggregates(cap, impl, 60.0) if a.kind.startswith("modbus.read")]
    assert sorted(a.direction for a in reads) == ["request", "response"]
    for a in reads:
        assert (a.interval_count, a.interval_peak) == (34, 13), a
        assert 4.985 < a.peak_ts < 4.995 and a.peak_frame in frames_between(cap, 4.985, 4.995)
    short = [(a.kind, a.direction, a.interval_count, a.interval_peak, a.peak_frame, a.peak_ts)
             for a in _aggregates(cap, impl, 2.0)]
    # (the interval flushed at 4.5 s restarts the window's count: 4.5, 4.9 and the ten reads)
    assert max(s[3] for s in short) == 12 and all(1 <= s[3] <= s[2] for s in short)
    if impl == "compiled":
        assert short == [(a.kind, a.direction, a.interval_count, a.interval_peak, a.peak_frame, a.peak_ts)
                         for a in _aggregates(cap, "pure", 2.0)]
