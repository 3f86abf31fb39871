"""What the interval's counts show: message floods on long connections, read sweeps answered by exceptions.

Contract
--------
``IntervalRates(sink, ctx, settings)`` reads the ``Aggregate`` observations of
an interval (one per key, link and direction that counted anything, with the
interval's count and the frame of the latest message) and judges each link
(client, server, port, protocol) at ``IntervalEnd``:

* ``dos.message_flood`` (thresholds of that rule): the link carried at least
  ``messages`` messages in the interval (both directions; on MQTT only the
  client's: what the broker forwards to a subscriber is no flood of its own)
  at an average of at least ``rate`` per second over its active span (from
  its first new key of the interval, or the interval's start, to its latest
  message) — or the keys new in the interval (all their messages in it: a
  new topic, register range, unit, service) carried ``messages`` at ``rate``
  over their own active span (the busiest new key alone, else all new keys
  together): a burst shorter than the interval on a connection that also
  polls, which the interval's average hides — or the link's peak keys (those whose busiest
  ``PEAK_WINDOW`` of the interval, ``Aggregate.interval_peak`` from the kernels, held ``PEAK_SHARE`` of
  ``rate``) carried ``messages`` in the interval and their busiest windows together reached ``rate``: a
  flood that repeats keys the link already used (its own polled block, reads inside it under the Modbus
  lump key, its own topic), which neither the interval's average nor the new keys show — or, on a link seen in an earlier interval, at least a quarter of
  ``rate`` and ``SURGE`` times its own busiest earlier interval (intervals
  judged floods are not its own rate); or its client
  sent ``megabytes`` of payload at ``mbps`` over that span: a flood on a
  connection that lived long before it (a compromised client, a single
  session), which ``floods.py`` judges only at the connection's end and
  averaged over its life.  Evidence: the frame of the link's busiest key's
  latest message in the interval (inside the flood), and that key's first
  frame when the key is new in the interval; and when the peak keys reach ``rate``, the message that made
  each one's busiest window (``PEAK_SAMPLES`` of them), the only evidence when nothing else flagged the
  link (the flood may have ended long before the key's latest message).  The finding key is
  ``floods.py``'s, so a flood judged both ways is one alert.
* ``recon.modbus_register_sweep`` (threshold ``failed``): the server
  answered at least ``failed`` requests of the client with exception 2
  (illegal data address) in the interval, and the client made at least
  ``failed`` requests new in the interval that it made at most twice (probes,
  not a poll): a read sweep past the end of the register map.  The kernels
  report only the first exception per (unit, function, code), so this comes
  from the counts.  Evidence: the first frames of the probes (at most
  ``SAMPLES``) and the latest exception.  Key ``(client, server)``: the scan
  detector's, one alert per sweep.
* ``recon.modbus_unit_sweep`` (thresholds ``units``, ``failed``): the link's
  request keys new in the interval name unit ids the link never requested
  before — ``units`` of them that did not answer (no response, no device
  exception in the interval), ``failed`` answered by gateway exceptions 10/11,
  or ``ALL_UNITS_FACTOR`` × ``units`` answered or not (scan.py's criteria).
  The scan detector sees the same from messages, but past the engine's key
  budget of a source (``scan_keys_per_source``: an attacker that swept
  registers and flooded in the same interval) it gets only a summary of the
  source: no server, and the interval's first frame as evidence.  Evidence
  here: the first request frames of the sweep's units (at most ``SAMPLES``,
  and the last; of units answered or not, the latest ``SAMPLES`` + 1).  Key ``(client, server)``: the scan detector's.

Bounded: at most ``MAX_LINKS`` links per interval (the rest counted in
``counts["links_dropped"]``) and ``MAX_LINKS`` link histories (least recently
judged forgotten first, ``counts["history_forgotten"]``); the unit ids a Modbus
link requested are a 256-bit int per link, as many links; at most ``PEAK_SAMPLES`` peak keys per link.
"""
from __future__ import annotations

from collections import OrderedDict

from ...parsers.common import PEAK_WINDOW
from .. import observations as O
from .catalogue import THRESHOLDS, finding
from .context import Context
from .model import AlertSink
from .settings import AlertSettings

MAX_LINKS = 16_384
"""Links judged per interval, and link histories kept (the engine's own link table is the real bound)."""
SURGE = 10.0
"""An interval at this many times the link's own busiest earlier rate is a surge (polls jitter by percents)."""
SURGE_SHARE = 0.25
"""A surge must also reach this share of ``rate``: a quiet link that gets busy is no flood."""
MIN_SPAN = 1.0
"""Seconds: a span shorter than this is rated over this (a burst at the end of an interval is not infinite)."""
HISTORY_SPAN = 5.0
"""Seconds of activity an interval needs to count in a link's history (a link's first seconds say little)."""
SAMPLES = 15
"""Probe frames kept per link as the sweep's evidence (model.MAX_EVIDENCE - 1)."""
ILLEGAL_DATA_ADDRESS = 2
GATEWAY_EXCEPTIONS = frozenset({10, 11})    # gateway path unavailable / target device failed to respond
ALL_UNITS_FACTOR = 4
"""As scan.py's: this many times ``units`` new unit ids answered or not are a sweep too."""
MB = 1_000_000
PROBE_REPEATS = 2
"""A request key made at most this often in all is a probe; a poll repeats every cycle."""
PEAK_SHARE = 0.1
"""A key whose busiest ``PEAK_WINDOW`` in the interval held at least this share of ``rate`` is a peak key: the
link's peak keys together (their busiest windows summed) are judged against ``rate`` (a 100 Hz PLC-to-PLC poll
is one key at 100 requests + 100 responses a second; a historian's thousands of 1 Hz keys have peaks of 1-2)."""
PEAK_SAMPLES = 4
"""Peak keys kept per link (the busiest): their busiest windows' frames are the flood's evidence."""

FLOOD = "dos.message_flood"
SWEEP = "recon.modbus_register_sweep"
UNIT_SWEEP = "recon.modbus_unit_sweep"


class _Link:
    """One link's counts in the current interval."""
    __slots__ = ("messages", "client_bytes", "first_ts", "last_ts", "top", "exceptions", "exception_frame",
                 "exception_ts", "probes", "probe_frames", "new_messages", "new_first", "new_last", "new_top",
                 "units", "answered", "gateway_failed", "peak", "peak_messages", "peaks")

    def __init__(self) -> None:
        self.messages = 0
        self.client_bytes = 0            # what the client sent
        self.first_ts = float("inf")     # earliest first_ts among its keys
        self.last_ts = 0.0
        self.top: tuple | None = None    # busiest counted key: (interval count, first frame, first ts,
                                         #   last frame, last ts)
        self.exceptions = 0              # exception 2 answers
        self.exception_frame = 0
        self.exception_ts = 0.0
        self.probes = 0
        self.probe_frames: list = []     # (frame, ts) of the first probes
        self.new_messages = 0            # counted messages of keys new in the interval (all their messages in it)
        self.new_first = float("inf")    # their span: earliest first, latest last message
        self.new_last = 0.0
        self.new_top: tuple | None = None    # the new key with most messages: (count, first frame, first ts,
                                             #   last frame, last ts)
        self.units: dict | None = None   # Modbus: unit -> (first ts, first frame) of its request keys new in it
        self.answered = 0                # Modbus: bit per unit that answered (a response or a device exception)
        self.gateway_failed = 0          # Modbus: bit per unit answered by gateway exceptions 10/11
        self.peak = 0                    # peak keys (PEAK_SHARE): their busiest windows' messages summed
        self.peak_messages = 0           # ... and their interval counts
        self.peaks: list | None = None   # the busiest PEAK_SAMPLES of them: (peak, frame, ts)


def _by_peak(p: tuple) -> tuple:
    return -p[0], p[1]


class IntervalRates:
    def __init__(self, sink: AlertSink, ctx: Context, settings: AlertSettings | None = None):
        s = settings or AlertSettings()
        self.sink, self.ctx = sink, ctx

        def th(rule: str, name: str) -> float:
            return s.threshold(rule, name, THRESHOLDS[rule][name])

        self.messages = th(FLOOD, "messages")
        self.rate = th(FLOOD, "rate")
        self.megabytes = th(FLOOD, "megabytes")
        self.mbps = th(FLOOD, "mbps")
        self.failed = th(SWEEP, "failed")
        self.units = th(UNIT_SWEEP, "units")
        self.units_failed = th(UNIT_SWEEP, "failed")
        self.peak_floor = max(2, PEAK_SHARE * self.rate * PEAK_WINDOW)
        self.units_seen: OrderedDict = OrderedDict()   # Modbus link -> bit per unit id it requested before
        self.links: dict = {}
        self.history: OrderedDict = OrderedDict()    # link -> busiest earlier rate (messages/s)
        self.counts = {"links_dropped": 0, "history_forgotten": 0}

    def aggregate(self, a: O.Aggregate) -> None:
        ln = self._link((a.client, a.server, a.server_port, a.protocol))
        if ln is not None:
            self._count(ln, a.protocol, a.kind, a.direction, a.count, a.first_ts, a.last_ts, a.interval_count,
                        a.interval_bytes, a.first_frame, a.last_frame, a.key)
            if a.interval_peak >= self.peak_floor and (a.protocol != "mqtt" or a.direction == "request"):
                self._peak(ln, a.interval_count, a.interval_peak, a.peak_frame, a.peak_ts)

    @staticmethod
    def _peak(ln: _Link, n: int, peak: int, frame: int, ts: float) -> None:
        """A peak key (its busiest window reached ``PEAK_SHARE`` of ``rate``) into its link's."""
        ln.peak += peak
        ln.peak_messages += n
        peaks = ln.peaks
        if peaks is None:
            ln.peaks = [(peak, frame, ts)]
        else:
            peaks.append((peak, frame, ts))
            if len(peaks) > PEAK_SAMPLES:
                peaks.sort(key=_by_peak)
                peaks.pop()

    def aggregates(self, b: O.LinkAggregates) -> None:
        """A link's aggregates handed over in bulk: the same counts as ``aggregate`` on each of them."""
        ln = self._link((b.client, b.server, b.server_port, b.protocol))
        if ln is None:
            return
        proto, count, floor, peak_key = b.protocol, self._count, self.peak_floor, self._peak
        for kind, _op, _t, direction, total, _b, first_ts, last_ts, n, nbytes, ff, lf, key, peak, pf, pts in b.rows:
            count(ln, proto, kind, direction, total, first_ts, last_ts, n, nbytes, ff, lf, key)
            if peak >= floor and (proto != "mqtt" or direction == "request"):
                peak_key(ln, n, peak, pf, pts)

    def _link(self, link_key: tuple) -> _Link | None:
        ln = self.links.get(link_key)
        if ln is None:
            if len(self.links) >= MAX_LINKS:
                self.counts["links_dropped"] += 1
                return None
            ln = self.links[link_key] = _Link()
        return ln

    @staticmethod
    def _count(ln: _Link, proto: str, kind: str, direction: str, total: int, first_ts: float, last_ts: float,
               n: int, nbytes: int, first_frame: int, last_frame: int, key: tuple) -> None:
        """One key's interval counts into its link's (``Aggregate``'s fields, by position)."""
        if direction == "request":
            ln.client_bytes += nbytes
        if proto != "mqtt" or direction == "request":
            ln.messages += n
            if first_ts < ln.first_ts:
                ln.first_ts = first_ts
            if last_ts > ln.last_ts:
                ln.last_ts = last_ts
            top = ln.top
            if top is None or n > top[0]:
                ln.top = (n, first_frame, first_ts, last_frame, last_ts)
            if total == n:               # new in the interval: its own active span is known
                ln.new_messages += n
                if first_ts < ln.new_first:
                    ln.new_first = first_ts
                if last_ts > ln.new_last:
                    ln.new_last = last_ts
                top = ln.new_top
                if top is None or n > top[0]:
                    ln.new_top = (n, first_frame, first_ts, last_frame, last_ts)
        if proto != "modbus":
            return
        unit = key[1] if len(key) > 2 else -1
        if direction == "request":
            if total == n and 0 <= unit <= 255:
                units = ln.units
                if units is None:
                    ln.units = {unit: (first_ts, first_frame)}
                elif unit not in units:  # (a link's keys come in the order they were first seen)
                    units[unit] = (first_ts, first_frame)
            if total <= PROBE_REPEATS and total == n:
                ln.probes += 1
                if len(ln.probe_frames) < SAMPLES:
                    ln.probe_frames.append((first_frame, first_ts))
        else:
            if kind == "modbus.exception" and len(key) > 3 and key[3] == ILLEGAL_DATA_ADDRESS:
                ln.exceptions += n
                if last_ts >= ln.exception_ts:
                    ln.exception_frame, ln.exception_ts = last_frame, last_ts
            if 0 <= unit <= 255:
                if kind == "modbus.exception" and len(key) > 3 and key[3] in GATEWAY_EXCEPTIONS:
                    ln.gateway_failed |= 1 << unit
                else:
                    ln.answered |= 1 << unit

    def interval_end(self, o: O.IntervalEnd) -> None:
        links, self.links = self.links, {}
        for key, ln in links.items():
            if ln.top is not None:
                self._flood(key, ln, o)
            if ln.exceptions >= self.failed and ln.probes >= self.failed:
                self._sweep(key, ln)
            if ln.units is not None:
                self._units(key, ln)

    # -- floods -----------------------------------------------------------------------
    def _burst(self, ln: _Link) -> tuple | None:
        """A flood of keys new in the interval, judged over their own active span: the busiest new key alone,
        else all new keys together.  (messages, span, evidence key) or None."""
        for n, first, last, top in ((ln.new_top[0], ln.new_top[2], ln.new_top[4], ln.new_top),
                                    (ln.new_messages, ln.new_first, ln.new_last, ln.new_top)):
            if n >= self.messages:
                span = max(last - first, MIN_SPAN)
                if n / span >= self.rate:
                    return n, span, top
        return None

    def _flood(self, key: tuple, ln: _Link, o: O.IntervalEnd) -> None:
        start = max(ln.first_ts, o.start_ts)
        span = max(ln.last_ts - start, MIN_SPAN)
        rate = ln.messages / span
        before = self.history.get(key)
        by_bytes = ln.client_bytes >= self.megabytes * MB and ln.client_bytes / span >= self.mbps * MB
        surge = before is not None and rate >= SURGE * before and rate >= SURGE_SHARE * self.rate
        burst = None
        if not by_bytes and not surge and rate < self.rate and ln.new_top is not None:
            # a burst on a link that carries steady traffic too: its new keys' own span, not the interval's
            burst = self._burst(ln)
            if burst is not None:
                messages, span, top = burst
                rate = messages / span
                ln.top = top
        # keys the link already used, flooded for seconds: their busiest windows, which the interval averages
        peaked = ln.peak_messages >= self.messages and ln.peak >= self.rate * PEAK_WINDOW
        if not by_bytes and burst is None and not peaked and (ln.messages < self.messages
                                                              or (rate < self.rate and not surge)):
            if span >= HISTORY_SPAN:         # the link's own rate: what it does when it does not flood
                self.history[key] = max(rate, before or 0.0)
                self.history.move_to_end(key)
                if len(self.history) > MAX_LINKS:
                    self.history.popitem(last=False)
                    self.counts["history_forgotten"] += 1
            return
        client, server, port, proto = key
        _, top_first_frame, top_first_ts, top_last_frame, top_last_ts = ln.top
        details = {"messages": ln.messages, "client_bytes": ln.client_bytes, "seconds": round(span, 6),
                   "rate": round(rate, 1),
                   "interval": [o.start_ts, o.end_ts], "last_frame": top_last_frame}
        if surge:
            details["earlier_rate"] = round(before, 1)
        why = f" ({rate / before:.0f}× its earlier rate)" if surge and rate < self.rate else ""
        what = (f"{ln.client_bytes / MB:.1f} MB of {proto} payload" if by_bytes and ln.messages < self.messages
                else f"{ln.messages} {proto} messages")
        if burst is not None:
            details["burst_messages"] = burst[0]
            what = f"{burst[0]} {proto} messages (a burst within {ln.messages} this interval)"
        frames = [(top_last_frame, top_last_ts)]
        if top_first_ts >= o.start_ts and top_first_frame != top_last_frame:
            frames.insert(0, (top_first_frame, top_first_ts))
        if peaked:
            details["peak_messages"] = ln.peak_messages
            details["peak_per_second"] = round(ln.peak / PEAK_WINDOW, 1)
            # the busiest windows' own frames: inside the flood even when the key goes on being polled after it
            frames.extend((frame, ts) for _, frame, ts in sorted(ln.peaks, key=_by_peak))
        msg = f"{client} sent {what} to {server}:{port} in {span:.1f} s ({rate:.0f} messages/s){why} (flood)"
        if peaked and not by_bytes and burst is None and not surge and rate < self.rate:
            # the peak alone: the interval's average and the new keys' spans hide it
            frames = frames[-len(ln.peaks):]
            details["last_frame"] = frames[0][0]
            msg = (f"{client} sent {ln.peak_messages} {proto} messages to {server}:{port} at up to "
                   f"{ln.peak / PEAK_WINDOW:.0f} messages/s ({ln.messages} in {span:.1f} s this interval) (flood)")
        fields = {"src": client, "dst": server, "protocol": proto, "port": port}
        for frame, ts in frames:
            self.sink.raise_finding(finding(FLOOD, key, msg, self.ctx.evidence(frame, ts), details=details,
                                            **fields))

    # -- unit id sweeps from the counts ----------------------------------------------------
    def _units(self, key: tuple, ln: _Link) -> None:
        """Unit ids new to the link in the interval, from its request keys new in it (past the engine's key
        budget the scan detector sees only a summary of the source, not which server nor when)."""
        seen = self.units_seen.pop(key, 0)
        new = sorted((v, u) for u, v in ln.units.items() if not (seen >> u) & 1)
        for u in ln.units:
            seen |= 1 << u
        self.units_seen[key] = seen
        if len(self.units_seen) > MAX_LINKS:
            self.units_seen.popitem(last=False)
            self.counts["history_forgotten"] += 1
        silent = [u for _, u in new if not ((ln.answered | ln.gateway_failed) >> u) & 1]
        failed = [u for _, u in new if (ln.gateway_failed >> u) & 1]
        if len(silent) >= self.units:
            n, what, shown = len(silent), "that did not answer ", set(silent)
        elif len(failed) >= self.units_failed:
            n, what, shown = len(failed), "answered by gateway exceptions ", set(failed)
        elif len(new) >= ALL_UNITS_FACTOR * self.units:
            n, what, shown = len(new), "", None
        else:
            return
        if shown is not None:            # the evidence: the sweep's own probes, not the units it also used
            new = [(v, u) for v, u in new if u in shown]
        else:                            # the latest: those that made it a sweep (the first may be a poll's)
            new = new[-(SAMPLES + 1):]
        client, server, port, _ = key
        msg = f"{client} addressed {n} Modbus unit ids on {server} {what}(unit id sweep)"
        details = {"distinct": n, "new_units": len(new), "silent": len(silent), "gateway_failed": len(failed)}
        fields = {"src": client, "dst": server, "protocol": "modbus", "port": port}
        for (ts, frame), _ in [*new[:SAMPLES], new[-1]] if len(new) > SAMPLES else new:
            self.sink.raise_finding(finding(UNIT_SWEEP, (client, server), msg, self.ctx.evidence(frame, ts),
                                            details=details, **fields))

    # -- read sweeps answered by exceptions -----------------------------------------------
    def _sweep(self, key: tuple, ln: _Link) -> None:
        client, server, port, _ = key
        n = min(ln.exceptions, ln.probes)
        msg = (f"{client} requested {ln.probes} new register ranges of {server}, {ln.exceptions} answered "
               f"'illegal data address' (register sweep)")
        details = {"distinct": n, "probes": ln.probes, "exceptions": ln.exceptions}
        fields = {"src": client, "dst": server, "protocol": "modbus", "port": port}
        for frame, ts in [*sorted(ln.probe_frames), (ln.exception_frame, ln.exception_ts)]:
            self.sink.raise_finding(finding(SWEEP, (client, server), msg, self.ctx.evidence(frame, ts),
                                            details=details, **fields))
