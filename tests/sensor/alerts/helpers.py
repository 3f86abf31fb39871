"""Small builders shared by the alert tests (findings, observations)."""
from __future__ import annotations

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.catalogue import finding
from otwatch.sensor.alerts.model import Evidence


def ev(frame: int, ts: float | None = None, source: str = "cap.pcap", flow: int = 0) -> Evidence:
    return Evidence(source, frame, float(frame) if ts is None else ts, flow)


def f(rule: str = "recon.port_scan", key=("10.0.0.66", "10.0.0.11"), frame: int = 1, **kw):
    return finding(rule, key, kw.pop("message", "m"), ev(frame, kw.pop("ts", None)), **kw)


def flow_start(fid, client, server, port, ts, frame, transport="tcp", protocol="none"):
    return O.FlowStart(ts, frame, fid, transport, 0, client, 40000 + fid, server, port, "", "", False, protocol, 0)


def flow_end(fid, ts, frame, flags=("syn", "rst"), packets_server=1):
    return O.FlowEnd(ts, frame, fid, "closed", ts, 1, packets_server, 60, 60, 0, 0, "none", flags, False, 0, 0, 0,
                     0, 0)
