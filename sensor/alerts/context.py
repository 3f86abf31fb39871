"""What every alert producer needs besides the observation: the source, frame offsets, flow endpoints.

Contract
--------
* ``Context.source`` is the capture path as given (or ``iface:<name>`` live);
  ``Context.set_source(name, frame_base)`` is called before each capture of a
  multi-file run with the engine's packet count so far, so ``evidence()``
  gives frame numbers within that file (Wireshark's).
* ``Context.flows`` remembers, per open flow id, the endpoints and the first
  frame from ``FlowStart`` (``FlowInfo``), forgotten at ``FlowEnd``; bounded by
  ``MAX_FLOWS`` (oldest forgotten first, counted).  Anomalies and scans name
  their IPs and ports through it.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .model import Evidence

MAX_FLOWS = 131_072
"""Open flows remembered: the engine's own flow table cap (limits.max_flows) is the real bound; this is a
backstop so a consumer bug cannot grow without limit."""


@dataclass(frozen=True, slots=True)
class FlowInfo:
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    protocol: str
    frame: int
    ts: float


class Context:
    def __init__(self, source: str = "", frame_base: int = 0):
        self.source = source
        self.frame_base = frame_base
        self.flows: OrderedDict[int, FlowInfo] = OrderedDict()
        self.counts = {"flows.forgotten": 0}

    def set_source(self, source: str, frame_base: int = 0) -> None:
        self.source = source
        self.frame_base = frame_base

    def evidence(self, frame: int, ts: float, flow_id: int = 0) -> Evidence:
        return Evidence(self.source, frame - self.frame_base if frame > self.frame_base else frame, ts, flow_id)

    def flow_started(self, o) -> FlowInfo:
        fi = FlowInfo(o.client, o.client_port, o.server, o.server_port, o.transport, o.protocol, o.frame, o.ts)
        fl = self.flows
        fl[o.flow_id] = fi
        if len(fl) > MAX_FLOWS:
            fl.popitem(last=False)
            self.counts["flows.forgotten"] += 1
        return fi

    def flow_ended(self, flow_id: int) -> FlowInfo | None:
        return self.flows.pop(flow_id, None)
