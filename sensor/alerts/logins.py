"""MQTT login brute force and connection floods (``auth.mqtt_brute_force``, ``dos.mqtt_connection_flood``).

Contract
--------
``LoginDetector(sink, ctx, settings).message(m)`` reads MQTT CONNECT and
CONNACK messages (the kernel reports every one of them in full) and counts,
per (client IP, broker) over a window of packet time (each rule's threshold
``window``, default ``WINDOW`` s):

* refused CONNACKs (any non-zero return/reason code): at
  threshold ``refused`` (default 5) in one window the pair raises
  ``auth.mqtt_brute_force`` with the refused CONNACKs as evidence (the first
  ones kept before the threshold, then each further one);
* CONNECTs: at threshold ``connects`` (default 200) in one
  window, ``dos.mqtt_connection_flood`` likewise.

State is bounded by ``MAX_PAIRS`` pairs (least recently active forgotten first).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import observations as O
from .catalogue import LOGIN_WINDOW, THRESHOLDS, finding
from .context import Context
from .model import AlertSink, Evidence
from .settings import AlertSettings

MAX_PAIRS = 4096
SAMPLES = 15
DEFAULTS = {k: THRESHOLDS[k] for k in ("auth.mqtt_brute_force", "dos.mqtt_connection_flood")}
WINDOW = LOGIN_WINDOW


class _Run:
    __slots__ = ("start", "n", "samples", "fired")

    def __init__(self, start: float):
        self.start = start
        self.n = 0
        self.samples: list[Evidence] = []
        self.fired = False


class _RateCounter:
    def __init__(self, sink: AlertSink, rule: str, threshold: float, window: float):
        self.sink, self.rule, self.threshold, self.window = sink, rule, threshold, window
        self.runs: OrderedDict = OrderedDict()

    def add(self, key: tuple, ev: Evidence, message: str, fields: dict) -> None:
        r = self.runs.get(key)
        if r is None or ev.ts - r.start > self.window:
            r = self.runs[key] = _Run(ev.ts)
            if len(self.runs) > MAX_PAIRS:
                self.runs.popitem(last=False)
        self.runs.move_to_end(key)
        r.n += 1
        if r.fired:
            self.sink.raise_finding(finding(self.rule, key, message, ev, details={"in_window": r.n}, **fields))
            return
        if len(r.samples) < SAMPLES:
            r.samples.append(ev)
        if r.n >= self.threshold:
            r.fired = True
            if ev not in r.samples:
                r.samples.append(ev)
            for sev in r.samples:
                self.sink.raise_finding(finding(self.rule, key, message, sev, details={"in_window": r.n}, **fields))
            r.samples = []


    def prune(self, horizon: float) -> None:
        """Forget runs whose window ended before *horizon* (``AlertStage.horizon``): the next CONNECT or
        CONNACK of their pair would open a new one."""
        dead = [k for k, r in self.runs.items() if horizon - r.start > self.window]
        for k in dead:
            del self.runs[k]


class LoginDetector:
    def __init__(self, sink: AlertSink, ctx: Context, settings: AlertSettings | None = None):
        s = settings or AlertSettings()
        self.ctx = ctx

        def mk(rule: str, name: str) -> _RateCounter:
            d = DEFAULTS[rule]
            return _RateCounter(sink, rule, s.threshold(rule, name, d[name]), s.threshold(rule, "window", d["window"]))

        self.refused = mk("auth.mqtt_brute_force", "refused")
        self.connects = mk("dos.mqtt_connection_flood", "connects")

    def horizon(self, ts: float) -> None:
        self.refused.prune(ts)
        self.connects.prune(ts)

    def message(self, m: O.Message) -> None:
        if m.protocol != "mqtt":
            return
        e = m.event
        name = type(e).__name__
        if name == "MQTTConnAck":
            code = getattr(e, "return_code", 0) or 0
            if code:
                key = (m.client, m.server, m.server_port)
                self.refused.add(key, self.ctx.evidence(m.frame, m.ts, m.flow_id),
                                 f"{m.client} had MQTT logins refused by {m.server}:{m.server_port} "
                                 f"(last: {getattr(e, 'return_name', '') or code})",
                                 {"src": m.client, "dst": m.server, "protocol": "mqtt", "port": m.server_port})
        elif name == "MQTTConnect":
            key = (m.client, m.server, m.server_port)
            self.connects.add(key, self.ctx.evidence(m.frame, m.ts, m.flow_id),
                              f"{m.client} opened many MQTT connections to {m.server}:{m.server_port}",
                              {"src": m.client, "dst": m.server, "protocol": "mqtt", "port": m.server_port})
