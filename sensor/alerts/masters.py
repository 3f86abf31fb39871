"""Modbus command injection without a baseline: a second master writing to a unit another master controls.

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

Bounded: ``MAX_UNITS`` (server, unit) writers and ``MAX_PAIRS`` (client,
server) first requests, least recently used forgotten first (counted in
``counts``).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import observations as O
from .catalogue import finding
from .context import Context
from .model import AlertSink

MAX_UNITS = 65_536
"""(server, unit) pairs whose first writer is remembered: 256 units on 256 gateways."""
MAX_PAIRS = 65_536
"""(client, server) pairs whose first request time is remembered."""
RULE = "command.modbus_rogue_writer"


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


class MasterWatch:
    def __init__(self, sink: AlertSink, ctx: Context):
        self.sink, self.ctx = sink, ctx
        self.writers: OrderedDict = OrderedDict()    # (server, unit) -> (client, ts of its first write)
        self.first: OrderedDict = OrderedDict()      # (client, server) -> ts of its first request
        self.counts = {"writers_forgotten": 0, "pairs_forgotten": 0}

    def message(self, m: O.Message) -> None:
        if m.direction != "request":
            return
        client, server = m.client, m.server
        since = _remember(self.first, (client, server), m.ts, MAX_PAIRS, self.counts, "pairs_forgotten")
        unit = getattr(m.event, "unit", None)
        if m.op != "write" or unit is None:
            return
        writer, wrote = _remember(self.writers, (server, unit), (client, m.ts), MAX_UNITS, self.counts,
                                  "writers_forgotten")
        if writer == client or wrote >= since:
            return
        self.sink.raise_finding(finding(
            RULE, (client, server, m.server_port),
            f"{client} wrote to unit {unit} of {server} ({m.kind.removeprefix('modbus.')}), a unit {writer} "
            f"commands (a second master)", self.ctx.evidence(m.frame, m.ts, m.flow_id),
            src=client, dst=server, protocol="modbus", port=m.server_port,
            details={"unit": unit, "function_code": getattr(m.event, "function", None), "target": m.target,
                     "first_writer": writer}))
