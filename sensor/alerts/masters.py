"""Modbus command injection without a baseline: a second master writing to a unit another master controls, and a
master that suddenly writes in bursts.

Contract
--------
``MasterWatch(sink, ctx).message(m)`` reads Modbus requests (the kernels
report the first of each key on a link: every new register, coil or function
a client writes) and remembers, per (server, unit), the first client that
wrote to it and when, and per (client, server) when the client's first
request was seen.  A write request (``op`` ``write``) from client C to
(server, unit) raises ``command.modbus_rogue_writer`` when another client
wrote to that unit before C's first request to the server: the unit had a
master that commands it, and a host that turned up after it commands it too —
a rogue or compromised master injecting commands (ATT&CK T0855), whatever
function codes it uses.  An engineering station that is the first to write
to a unit stays quiet (it is that unit's writer); two masters present from
the start are not judged against each other.  Key (client, server, port):
one alert per injecting host and server, counted per write; evidence: each
write request.

``command.modbus_write_burst`` (``WriteBursts``): a client that had been
talking to a server for ``settled`` s (default 60) writes ``writes`` (16)
targets new to its link (registers, coils, functions) within ``window`` s
(10), when no earlier window of it held more than a quarter of that: a
master that polls and writes a setpoint now and then does not turn into one
that rewrites a plant's worth of set-points at once unless it is being used
to inject commands (a compromised HMI or engineering station).  A master
that writes varied targets all the time (bench/make_varied.py's) is its own
earlier window; a host that writes as soon as it appears is the rogue-writer
rule's.  Evidence: the burst's writes (the first 15, then each).

Bounded: ``MAX_UNITS`` (server, unit) writers and ``MAX_PAIRS`` (client,
server) first requests and burst windows, least recently used forgotten
first (counted in ``counts``).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import observations as O
from .catalogue import THRESHOLDS, finding
from .context import Context
from .model import AlertSink, Evidence
from .settings import AlertSettings

MAX_UNITS = 65_536
"""(server, unit) pairs whose first writer is remembered: 256 units on 256 gateways."""
MAX_PAIRS = 65_536
"""(client, server) pairs whose first request time is remembered."""
RULE = "command.modbus_rogue_writer"
BURST = "command.modbus_write_burst"
SAMPLES = 15
"""Writes kept with their evidence before a burst is declared (model.MAX_EVIDENCE - 1)."""
QUIET_SHARE = 0.25
"""An earlier window with more than this share of ``writes`` makes the client a busy writer: no burst."""


def _remember(table: OrderedDict, key, value, cap: int, counts: dict, name: str):
    """*table*'s value for *key*, set to *value* when absent (the least recently used forgotten past *cap*)."""
    v = table.get(key)
    if v is None:
        v = table[key] = value
        if len(table) > cap:
            table.popitem(last=False)
            counts[name] += 1
    else:
        table.move_to_end(key)
    return v


class _Window:
    __slots__ = ("start", "n", "busiest", "samples", "fired")

    def __init__(self, start: float):
        self.start, self.n, self.busiest, self.fired = start, 0, 0, False
        self.samples: list[Evidence] = []


class WriteBursts:
    def __init__(self, sink: AlertSink, settings: AlertSettings, counts: dict):
        d = THRESHOLDS[BURST]
        self.sink, self.counts = sink, counts
        self.writes, self.window, self.settled = (settings.threshold(BURST, k, d[k])
                                                  for k in ("writes", "window", "settled"))
        self.windows: OrderedDict = OrderedDict()    # (client, server) -> _Window

    def write(self, m: O.Message, since: float, ev: Evidence) -> None:
        """One write new to the link of *m*'s client, which first talked to the server at *since*."""
        key = (m.client, m.server)
        w = self.windows.get(key)
        if w is None:
            w = _remember(self.windows, key, _Window(m.ts), MAX_PAIRS, self.counts, "pairs_forgotten")
        elif m.ts - w.start > self.window:
            if not w.fired:
                w.busiest = max(w.busiest, w.n)
            w.start, w.n, w.samples, w.fired = m.ts, 0, [], False
        self.windows.move_to_end(key)
        w.n += 1
        if w.fired:
            self._raise(m, w, ev)
            return
        if len(w.samples) < SAMPLES:
            w.samples.append(ev)
        if w.n >= self.writes and w.start - since >= self.settled and w.busiest <= QUIET_SHARE * self.writes:
            w.fired = True
            for e in (w.samples if ev in w.samples else [*w.samples, ev]):
                self._raise(m, w, e)
            w.samples = []

    def _raise(self, m: O.Message, w: _Window, ev: Evidence) -> None:
        self.sink.raise_finding(finding(
            BURST, (m.client, m.server, m.server_port),
            f"{m.client} wrote {w.n} new targets of {m.server} within {self.window:.0f} s (at most {w.busiest} "
            f"in any {self.window:.0f} s before: a burst of writes)", ev, src=m.client, dst=m.server,
            protocol="modbus", port=m.server_port,
            details={"writes": w.n, "window": self.window, "earlier_busiest": w.busiest, "target": m.target}))


class MasterWatch:
    def __init__(self, sink: AlertSink, ctx: Context, settings: AlertSettings | None = None):
        self.sink, self.ctx = sink, ctx
        self.writers: OrderedDict = OrderedDict()    # (server, unit) -> (client, ts of its first write)
        self.first: OrderedDict = OrderedDict()      # (client, server) -> ts of its first request
        self.counts = {"writers_forgotten": 0, "pairs_forgotten": 0}
        self.bursts = WriteBursts(sink, settings or AlertSettings(), self.counts)

    def message(self, m: O.Message) -> None:
        if m.direction != "request":
            return
        client, server = m.client, m.server
        since = _remember(self.first, (client, server), m.ts, MAX_PAIRS, self.counts, "pairs_forgotten")
        unit = getattr(m.event, "unit", None)
        if m.op != "write" or unit is None:
            return
        ev = self.ctx.evidence(m.frame, m.ts, m.flow_id)
        self.bursts.write(m, since, ev)
        writer, wrote = _remember(self.writers, (server, unit), (client, m.ts), MAX_UNITS, self.counts,
                                  "writers_forgotten")
        if writer == client or wrote >= since:
            return
        self.sink.raise_finding(finding(
            RULE, (client, server, m.server_port),
            f"{client} wrote to unit {unit} of {server} ({m.kind.removeprefix('modbus.')}), a unit {writer} "
            f"commands (a second master)", ev,
            src=client, dst=server, protocol="modbus", port=m.server_port,
            details={"unit": unit, "function_code": getattr(m.event, "function", None), "target": m.target,
                     "first_writer": writer}))
