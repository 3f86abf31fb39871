"""Sliding windows of packet time, per scope: distinct items (sweeps) and event counts (storms, floods).

Contract: ``Distinct(window).add(scope, item, ts)`` returns how many distinct
items ``scope`` has shown in the last ``window`` seconds (this one included);
``Counter(window, cap).add(scope, ts)`` returns how many events.  Both are
bounded: at most ``MAX_SCOPES`` scopes (the least recently used is forgotten)
and, per scope, ``cap`` entries (a counter never needs more than its threshold).

``Walk(steps).step(scope, address)`` tells whether a stream of addresses
(one client's new requests of one unit and function code) is *walking*: of its
last ``steps`` steps, the share that went in its main direction (up or down).
A sweep walks the address space in one direction (1.0); a master reading
varied ranges jumps up and down at random (about 0.5).  Bounded like the others.
"""
from __future__ import annotations

from collections import OrderedDict, deque

MAX_SCOPES = 4096
"""Scopes (clients, pairs) tracked at once; an attacker spoofing sources costs at most this."""
MAX_ITEMS = 4096
"""Distinct items remembered per scope; a sweep is declared long before."""


class Distinct:
    def __init__(self, window: float) -> None:
        self.window = window
        self._s: OrderedDict = OrderedDict()   # scope -> (deque of (ts, item), {item: last ts})

    def add(self, scope, item, ts: float) -> int:
        st = self._s.get(scope)
        if st is None:
            if len(self._s) >= MAX_SCOPES:
                self._s.popitem(last=False)
            st = self._s[scope] = (deque(), {})
        else:
            self._s.move_to_end(scope)
        q, last = st
        cut = ts - self.window
        while q and (q[0][0] < cut or len(q) >= MAX_ITEMS):
            t0, it = q.popleft()
            if last.get(it) == t0:
                del last[it]
        q.append((ts, item))
        last[item] = ts
        return len(last)


class Counter:
    def __init__(self, window: float, cap: int) -> None:
        self.window = window
        self.cap = cap
        self._s: OrderedDict = OrderedDict()

    def add(self, scope, ts: float) -> int:
        q = self._s.get(scope)
        if q is None:
            if len(self._s) >= MAX_SCOPES:
                self._s.popitem(last=False)
            q = self._s[scope] = deque(maxlen=self.cap)
        else:
            self._s.move_to_end(scope)
        cut = ts - self.window
        while q and q[0] < cut:
            q.popleft()
        q.append(ts)
        return len(q)


class Walk:
    def __init__(self, steps: int) -> None:
        self.steps = max(1, int(steps))
        self._s: OrderedDict = OrderedDict()   # scope -> [last address, deque of +1/-1 steps, ups in the deque]

    def step(self, scope, address: int) -> float:
        """Add *address* to *scope*'s stream; the share of its last ``steps`` steps that went the main way
        (0.0 before the first step; a repeated address is no step)."""
        st = self._s.get(scope)
        if st is None:
            if len(self._s) >= MAX_SCOPES:
                self._s.popitem(last=False)
            self._s[scope] = [address, deque(), 0]
            return 0.0
        self._s.move_to_end(scope)
        last, q, ups = st
        if address != last:
            up = address > last
            if len(q) >= self.steps:
                ups -= q.popleft()
            q.append(1 if up else 0)
            ups += up
            st[0], st[2] = address, ups
        n = len(q)
        return max(ups, n - ups) / n if n else 0.0

    def count(self, scope) -> int:
        """Steps of *scope* the share is taken over (at most ``steps``)."""
        st = self._s.get(scope)
        return len(st[1]) if st is not None else 0
