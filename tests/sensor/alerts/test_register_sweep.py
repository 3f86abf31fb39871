"""``recon.modbus_register_sweep`` tells a sweep from a busy master (issue 14 leftovers, point 1).

A master reading and writing varied ranges (random unit, function code, start and length over a 2,000-register
map, as bench/make_varied.py's pymodbus client does) makes a new register range with nearly every request, like
a sweep; what it does not do is *walk*: its start addresses go up and down at random.  A sweep steps through the
addresses one way and never comes back.  Captures are built here with bench/make_hostile.py's TCP machinery
(real handshakes, sequence numbers, checksums) and run through the whole pipeline on both kernels; the old
detector raised the sweep on the varied capture (one alert per server and one from the scan summaries).
"""
from __future__ import annotations

import importlib.util
import random
import struct
from pathlib import Path

import pytest

from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)
mc = make_hostile.mc

RULE = "recon.modbus_register_sweep"
TABLE = 2000
PACKETS = 9000           # 4 packets a request: ~2,200 requests, three connections


def varied(rng: random.Random, i: int):
    """One request of a master reading and writing varied ranges (bench/make_varied.py's mix): (unit, PDU, reply)."""
    unit = rng.choice((1, 2))
    op = rng.random()
    if op < 0.7:                                          # reads FC 1-4
        fc = rng.choice((1, 2, 3, 4))
        q = rng.randint(1, 125)
        a = rng.randrange(TABLE - q)
        body = bytes((fc, 2 * q)) + bytes(2 * q) if fc in (3, 4) else bytes((fc, (q + 7) // 8)) + bytes((q + 7) // 8)
        return unit, struct.pack("!BHH", fc, a, q), body
    if op < 0.9:                                          # FC 6
        pdu = struct.pack("!BHH", 6, rng.randrange(TABLE), rng.randrange(65536))
        return unit, pdu, pdu
    q = rng.randint(1, 30)                                # FC 16
    a = rng.randrange(TABLE - q)
    return unit, struct.pack("!BHHB", 16, a, q, 2 * q) + bytes(2 * q), struct.pack("!BHH", 16, a, q)


def walk(i: int):
    """A read sweep: holding registers 0, 10, 20 ... in blocks of 10, unit 1 (pcaps/make_attack_scenarios.py's)."""
    a = 10 * i
    return 1, struct.pack("!BHH", 3, a, 10), bytes((3, 20)) + bytes(20)


def build(path: Path, request) -> None:
    rng = random.Random(7)
    mc.W = w = mc.Writer(str(path), PACKETS)
    make_hostile._modbus(rng, mc.T0, w, lambda i: request(rng, i))
    w.close()


def alerts(path: Path, impl: str, **settings):
    book = AlertBook(AlertSettings())
    st = AlertStage(book, Context(str(path)))
    p = Pipeline([st], Settings(implementation=impl, **settings))
    p.run_file(str(path))
    p.finish()
    st.finish()
    return [a for a in book.alerts() if a.rule == RULE]


def request_frames(path: Path) -> list[int]:
    """Frame number of every Modbus request (client -> port 502 with payload), in order."""
    from otwatch.sensor import observations as O

    frames = []

    class C:
        def observe(self, o):
            if type(o) is O.Message and o.direction == "request":
                frames.append(o.frame)

    p = Pipeline([C()], Settings(detail_all=True))
    p.run_file(str(path))
    p.finish()
    return frames


def test_a_master_reading_varied_ranges_is_no_sweep(impl, tmp_path):
    cap = tmp_path / "varied.pcap"
    build(cap, lambda rng, i: varied(rng, i))
    assert alerts(cap, impl) == []
    # past the engine's budget of new keys per source the scan summaries say nothing either
    from otwatch.parsers.limits import Limits

    assert alerts(cap, impl, limits=Limits(scan_keys_per_source=16), interval=0.5) == []


def test_a_walk_after_varied_traffic_from_the_same_master_is_one_sweep(impl, tmp_path):
    cap = tmp_path / "mixed.pcap"
    switch = 1200
    build(cap, lambda rng, i: varied(rng, i) if i < switch else walk(i - switch))
    # the engine reports the first 256 new keys of a source per interval: the varied part uses up the budget of
    # the interval the walk starts in; the walk is seen in the next ones (half a second each here)
    (a,) = alerts(cap, impl, interval=0.5)
    first_walk = request_frames(cap)[switch]
    assert a.src == "10.10.9.66" and a.port == 502
    assert all(e.frame >= first_walk for e in a.evidence), (first_walk, [e.frame for e in a.evidence])
    assert a.details["unit"] == 1 and a.details["function_code"] == 3 and a.details["walk"] >= 0.9


def test_the_hostile_register_sweep_is_one_alert_with_evidence_inside(impl, tmp_path):
    cap = tmp_path / "modbus-registers.pcap"
    make_hostile.build("modbus-registers", str(cap), 12000, quiet=True)
    (a,) = alerts(cap, impl)
    assert a.count > 64 and all(1 <= e.frame <= 12000 for e in a.evidence)


def test_a_sweep_down_the_addresses_is_a_walk_too(impl, tmp_path):
    cap = tmp_path / "down.pcap"
    build(cap, lambda rng, i: walk(6000 - i))
    (a,) = alerts(cap, impl)
    assert a.details["walk"] == 1.0


@pytest.mark.parametrize("walk_share", [1.0])
def test_walk_threshold_is_a_setting(impl, tmp_path, walk_share):
    """Jitter in a walk (every twentieth request a little back) is still a walk at the default share, not at 1.0."""
    cap = tmp_path / "jitter.pcap"
    build(cap, lambda rng, i: (1, struct.pack("!BHH", 3, i, 1), bytes((3, 2, 0, 0)))
          if i % 20 == 19 else walk(i + 2000))
    assert len(alerts(cap, impl)) == 1
    book = AlertBook(AlertSettings.from_mapping({RULE: {"thresholds": {"walk": walk_share}}}))
    st = AlertStage(book, Context(str(cap)))
    p = Pipeline([st], Settings(implementation=impl))
    p.run_file(str(cap))
    p.finish()
    st.finish()
    assert [a for a in book.alerts() if a.rule == RULE] == []


def _requests(st, reqs, client="10.0.0.66", server="10.0.0.11"):
    from types import SimpleNamespace

    from otwatch.sensor import observations as O

    for frame, (unit, fc, address, quantity) in enumerate(reqs, 1):
        e = SimpleNamespace(function=fc, unit=unit, table="t", address=address, quantity=quantity)
        st.observe(O.Message(frame / 100, frame, "modbus", "k", "read", "t", "request", 1, 1, client, server, 502,
                             e, (0,)))


def _book_stage():
    book = AlertBook(AlertSettings())
    return book, AlertStage(book, Context("cap.pcap"))


def test_a_sweep_of_four_tables_at_once_counts_together():
    """20 blocks of each of the four tables, interleaved: no table reaches `ranges` alone, the sweep does."""
    book, st = _book_stage()
    _requests(st, [(1, fc, 10 * i, 10) for i in range(20) for fc in (1, 2, 3, 4)])
    (a,) = book.alerts()
    # declared at the 65th range, when the first table has walked 16 steps (a quarter of `ranges`)
    assert a.rule == RULE and a.details["distinct"] == 65 and a.count == 15 + (80 - 65)


def test_the_first_poll_cycle_over_many_units_is_no_sweep():
    """A master's first cycle over 40 RTUs behind one gateway, three blocks each in address order: 120 new
    ranges, ascending within every unit, but a few steps per unit only (the unit-id rule judges the units)."""
    book, st = _book_stage()
    _requests(st, [(unit, 3, a, 10) for unit in range(1, 41) for a in (0, 100, 200)])
    assert [a for a in book.alerts() if a.rule == RULE] == []
