"""One memory budget: turn a memcap (bytes) into the per-structure caps of ``Limits``.

Contract
--------
``limits_for(memcap, base=DEFAULT_LIMITS) -> Limits`` is the one place where a memcap is
shared out.  Every table that grows with the traffic has a cap derived here; what a cap
does when it is reached (evict idle state first, then the oldest; count it; report one
``memcap.evicted`` anomaly per interval) is the table owner's job (ext/engine.py,
docs/architecture.md "Memory budget").  ``parse_size("512M")`` reads the ``--memcap``
option and the ``memcap`` config key.

How the budget is shared
------------------------
``FIXED_BYTES`` is not shared out: the interpreter, the libraries, the 4 MiB capture
buffer and SQLite's page cache (measured: ``otwatch analyze`` on a 10-packet capture).  The
rest is split by ``SHARES``; each share divided by its ``COST`` (bytes one entry costs, all
in: the engine object, its records' share, and what the pipeline and the consumers keep
per entry; measured on bench/make_hostile.py's captures, docs/performance.md) gives the cap.

The default, ``DEFAULT_MEMCAP`` = 512 MiB, is sized for a Raspberry Pi 4 with 2 GB: a quarter
of its RAM, which leaves the OS, the page cache, the sinks and a TUI session the rest, and is
what a monitoring sidecar may take beside a PLC gateway's own services.  With it the engine
tracks ~52 k flows at once (and the ~116 k hosts and ~65 k links they can hold; and ~43 k
half-open records, a flood's bare SYNs held back by the scan summaries): a plant has
hundreds to a few thousand; a flood is what fills it.
"""
from __future__ import annotations

import dataclasses
import re

from .limits import DEFAULT_LIMITS, Limits

MIB = 1024 * 1024
DEFAULT_MEMCAP = 512 * MIB
"""A quarter of a 2 GB Raspberry Pi 4 (see the module docstring)."""
MIN_MEMCAP = 128 * MIB
"""Below this the fixed part leaves too little to share: refused (the interpreter alone is ~40 MB)."""
FIXED_BYTES = 96 * MIB
"""Interpreter, libraries, capture buffer, SQLite page cache: the RSS of a run on a tiny capture
(~75 MB measured with the inventory and alerts on) plus a margin for the allocator's slack."""

SHARES = {
    "flows": 0.50,       # flows with the hosts and links they hold (HOSTS_PER_FLOW, LINKS_PER_FLOW)
    "half_open": 0.05,   # a flood's bare SYNs held back by the scan summaries (max_half_open)
    "keys": 0.25,        # message tallies of all links (link_keys_total)
    "reassembly": 0.20,  # out-of-order segments held by all flows (reassembly_total_bytes)
}
"""Fractions of (memcap - FIXED_BYTES); they add up to 1."""

HOSTS_PER_FLOW = 2.25
"""Host entries paid for beside each flow: the two a flow holds (not evictable while it lives),
and a quarter more so that a full host table always has idle hosts to evict."""
LINKS_PER_FLOW = 1.25
"""Link entries paid for beside each flow: the one a flow is bound to, and a quarter more."""

COST = {
    "flow": 1536,        # Flow + its records + FlowInfo (alerts) + pipeline tuple; a kernel is made at data
    "host": 768,         # Host + key tuple + MAC/IP bytes + the summary's and inventory's strings
    "link": 768,         # Link + two dicts + key tuple + the pipeline's _LinkInfo and strings
    "key": 320,          # a tally (C fields) + its key tuple + the describe cache's entry
    "half_open": 512,    # _HalfOpen (C fields, no GC header) + its table entry + the 4 address/MAC bytes
}
"""Bytes one entry costs, all in (measured, docs/performance.md "Memory budget")."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)(?:i?[bB])?\s*$")
_UNIT = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


def parse_size(text: str | int) -> int:
    """Bytes from ``"512M"``, ``"2G"``, ``"700MiB"``, ``"1048576"`` (binary units).  ValueError otherwise."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 2G)")
    return int(float(m.group(1)) * _UNIT[m.group(2).lower()])


def limits_for(memcap: int = DEFAULT_MEMCAP, base: Limits = DEFAULT_LIMITS) -> Limits:
    """*base* with every budget-derived cap computed from *memcap* bytes (see the module docstring)."""
    if memcap < MIN_MEMCAP:
        raise ValueError(f"memcap {memcap // MIB} MiB is below the minimum of {MIN_MEMCAP // MIB} MiB")
    share = memcap - FIXED_BYTES
    # the flow share pays for each flow and the hosts and links it holds, so that the three
    # tables full together stay within it (a host or link cap of its own, below what the flows
    # hold, could not be enforced: hosts and links of live flows are not evicted)
    per_flow = COST["flow"] + HOSTS_PER_FLOW * COST["host"] + LINKS_PER_FLOW * COST["link"]
    flows = int(share * SHARES["flows"] / per_flow)
    return dataclasses.replace(
        base,
        memcap=memcap,
        max_flows=flows,
        max_hosts=int(flows * HOSTS_PER_FLOW),
        max_links=int(flows * LINKS_PER_FLOW),
        max_half_open=int(share * SHARES["half_open"] / COST["half_open"]),
        link_keys_total=int(share * SHARES["keys"] / COST["key"]),
        reassembly_total_bytes=int(share * SHARES["reassembly"]),
    )


def describe(limits: Limits) -> list[tuple[str, int]]:
    """(name, value) of the budget-derived caps, for ``--memcap`` help, the summary and docs."""
    return [("memcap", limits.memcap), ("max_flows", limits.max_flows), ("max_hosts", limits.max_hosts),
            ("max_links", limits.max_links), ("max_half_open", limits.max_half_open),
            ("link_keys_total", limits.link_keys_total), ("reassembly_total_bytes", limits.reassembly_total_bytes)]


EVICTIONS = {"flows": ("flows.evicted_emergency", "flows.evicted_cap", "flows.evicted_half_open"),
             "hosts": ("hosts.evicted",), "links": ("links.evicted",), "keys": ("links.evicted_keys",)}
"""Engine counters (ext/engine.py ``BUDGET_COUNTERS``) of entries evicted to stay within the caps, per table."""
OVERFLOWS = {"over_cap": ("hosts.over_cap", "links.over_cap"), "reassembly_drains": ("reassembly.memcap_drains",)}
"""The other budget counters: tables let grow past their cap (no idle entry to evict), reassembly drained."""


def usage(stats: dict, limits: Limits) -> dict:
    """The budget's state from an engine's (or pipeline's) ``stats()``: the memcap, each table's size
    and cap, and what was evicted (since the start), flat and JSON-ready: the sensor's heartbeat
    carries it and the TUI's Overview shows it (its Memory tile)."""
    d = {"memcap": limits.memcap,
         "flows_active": int(stats.get("flows.active", 0)), "max_flows": limits.max_flows,
         "hosts_active": int(stats.get("hosts.active", 0)), "max_hosts": limits.max_hosts,
         "links_active": int(stats.get("links.active", 0)), "max_links": limits.max_links}
    for name, counters in (*EVICTIONS.items(), *OVERFLOWS.items()):
        key = name if name in OVERFLOWS else f"evicted_{name}"
        d[key] = sum(int(stats.get(c, 0)) for c in counters)
    return d


USAGE_KEYS = tuple(usage({}, Limits()))
"""The keys ``usage`` returns (what a heartbeat carries of the budget)."""

DEFAULT_BUDGET_LIMITS = limits_for(DEFAULT_MEMCAP)
"""``DEFAULT_LIMITS`` shared out of the default memcap: what ``analyze`` and ``sensor`` use."""
