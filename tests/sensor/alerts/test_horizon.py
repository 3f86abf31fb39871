"""The alert stage forgets windows behind the engine's horizon (AlertStage.horizon), and nothing else changes.

A flood of spoofed sources, one probe each, kept one scan window per source (host and port scans), one
connection-flood run and one message-flood episode until the producers' LRU caps (4,096 each), although
every one of them had expired: the SYN flood's peak RSS grew from 1 M to 4 M packets by that.  At every
``IntervalEnd`` the pipeline now hands the stage the engine's horizon (its oldest live flow or half-open
record, else the flush's time) and the windows every later event would restart anyway go.  Through the real
pipeline, on both kernels: the tables shrink, and the alerts are those of a run without the horizon.
"""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.sensor.alerts import scan as scan_mod
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.model import Evidence
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage
from otwatch.sensor.pipeline import Pipeline

from support.capbuild import eth, ipv4, pcap, tcp

ROUTER = "02:00:00:00:00:01"
PLC = "02:00:00:00:00:0b"
SOURCES = 1200
SPACING = 0.6          # s between two flood sources: 720 s of flood, more than twice the scan window (300 s)


def _syn(ts: float, src: str, dst: str, sport: int, dport: int = 502) -> tuple:
    return ts, eth(ROUTER, PLC, 0x0800, ipv4(src, dst, 6, tcp(sport, dport, 1000, 0, "S")))


def _capture(path) -> str:
    pk = []
    for i in range(SOURCES):          # one SYN from each spoofed source, never answered
        pk.append(_syn(i * SPACING, f"10.128.{i // 250}.{i % 250 + 1}", "10.10.1.11", 40000 + i % 20000))
    for j in range(12):               # a host scan inside one window: an alert
        pk.append(_syn(100.0 + j, "10.99.0.1", f"10.10.2.{j + 1}", 50000 + j))
    for j in range(12):               # one that takes longer than the window: none
        pk.append(_syn(10.0 + 40.0 * j, "10.99.0.2", f"10.10.3.{j + 1}", 51000 + j))
    for j in range(12):               # a port scan of the PLC, slowly but within the window
        pk.append(_syn(400.0 + 20.0 * j, "10.99.0.3", "10.10.1.11", 52000, 1000 + j))
    for j in range(210):              # a connection flood from one client: 210 connections in 4 s
        pk.append(_syn(300.0 + j * 0.02, "10.99.0.4", "10.10.1.11", 20000 + j))
    pk.append(_syn(SOURCES * SPACING + 200.0, "10.99.0.9", "10.10.1.11", 53000))   # time moves on
    pk.sort(key=lambda p: p[0])
    p = path / "flood.pcap"
    p.write_bytes(pcap(pk))
    return str(p)


def _run(cap: str):
    book = AlertBook(AlertSettings())
    stage = AlertStage(book, Context(cap))
    p = Pipeline([stage])
    p.run_file(cap)
    sizes = {"hosts": len(stage.scan.hosts.windows), "ports": len(stage.scan.ports.windows),
             "runs": len(stage.floods.runs), "episodes": len(stage.floods.episodes)}
    p.finish()
    stage.finish()
    alerts = sorted((dataclasses.asdict(a) for a in book.alerts()), key=lambda a: a["id"])
    return sizes, alerts


def test_expired_windows_go_and_the_alerts_stay(tmp_path, monkeypatch):
    cap = _capture(tmp_path)
    sizes, alerts = _run(cap)
    monkeypatch.setattr(AlertStage, "horizon", None, raising=False)    # the pipeline calls none: all windows kept
    kept, alerts_kept = _run(cap)
    assert alerts == alerts_kept
    rules = {a["rule"] for a in alerts}
    assert {"recon.host_scan", "recon.port_scan", "dos.connection_flood"} <= rules
    assert not [a for a in alerts if a["rule"] == "recon.host_scan" and a["src"] == "10.99.0.2"]
    # without the horizon every probing source keeps its window; with it, only the last window's worth
    # (300 s of 0.6 s sources, and the flows still open) and the connection-flood runs of the last 10 s
    assert kept["hosts"] >= SOURCES and kept["runs"] >= SOURCES
    assert sizes["hosts"] <= (300 + 120) / SPACING and sizes["ports"] <= (300 + 120) / SPACING
    assert sizes["runs"] <= (10 + 120) / SPACING and sizes["episodes"] <= (10 + 120) / SPACING


def test_a_flow_older_than_the_horizon_is_counted():
    book = AlertBook(AlertSettings())
    ctx = Context("cap.pcap")
    stage = AlertStage(book, ctx)
    stage.horizon(500.0)
    from .helpers import flow_start

    stage.observe(flow_start(1, "10.0.0.1", "10.0.0.2", 502, 100.0, 1, protocol="modbus"))
    assert ctx.counts["flows_before_horizon"] == 1


# -- one-item windows (scan._One) are the _Window they stand for ----------------------------------------------

class _Reference:
    """scan._Counter as it was before one-item windows: a _Window for every window."""

    def __init__(self, threshold, window):
        self.c = scan_mod._Counter(_Sink(), "recon.host_scan", threshold, window, {})
        self.c.add = self.add
        self.threshold, self.window = threshold, window

    def add(self, key, item, ev, message, fields):
        c = self.c
        w = c.windows.get(key)
        if w is None or ev.ts - w.start > self.window or ev.ts < w.start - self.window:
            w = scan_mod._Window(ev.ts)
            c.windows[key] = w
        c.windows.move_to_end(key)
        if item in w.items:
            return
        w.items.add(item)
        if not w.fired:
            if len(w.samples) < scan_mod.SAMPLES:
                w.samples.append((item, ev))
            if len(w.items) >= self.threshold:
                w.fired = True
                n = len(w.items)
                for it, sev in w.samples:
                    c.sink.raise_finding((key, n, sev))
                if not any(it == item for it, _ in w.samples):
                    c.sink.raise_finding((key, n, ev))
                w.samples = []
            return
        c.sink.raise_finding((key, len(w.items), ev))

    def discard(self, key, item):
        w = self.c.windows.get(key)
        if w is None or item not in w.items or w.fired:
            return
        w.items.discard(item)
        w.samples = [(it, ev) for it, ev in w.samples if it != item]


class _Sink:
    def __init__(self):
        self.got = []

    def raise_finding(self, f):
        self.got.append(f)


def _finding(rule, key, message, ev, details=None, **fields):
    return (key, details["distinct"], ev)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 5), st.floats(0, 50), st.booleans()), max_size=60),
       st.integers(2, 4))
def test_one_item_windows_raise_what_full_windows_raise(events, threshold):
    new = scan_mod._Counter(_Sink(), "recon.host_scan", threshold, 10.0, {})
    ref = _Reference(threshold, 10.0)
    orig = scan_mod.finding
    scan_mod.finding = _finding
    try:
        for frame, (src, item, ts, discard) in enumerate(events):
            if discard:
                new.discard((src,), item)
                ref.discard((src,), item)
            else:
                ev = Evidence("cap", frame, ts)
                new.add((src,), item, ev, lambda n: "", {})
                ref.add((src,), item, ev, None, None)
    finally:
        scan_mod.finding = orig
    assert new.sink.got == ref.c.sink.got
    assert list(new.windows) == list(ref.c.windows)


@pytest.mark.parametrize("threshold", [1, 3])
def test_a_one_item_window_takes_no_set(threshold):
    c = scan_mod._Counter(_Sink(), "recon.host_scan", threshold, 10.0, {})
    c.add(("a",), "x", Evidence("cap", 1, 0.0), lambda n: "", {})
    assert type(c.windows[("a",)]).__name__ == ("_One" if threshold > 1 else "_Window")
