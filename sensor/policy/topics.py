"""MQTT topic names and filters [MQTT 3.1.1 §4.7, 5.0 §4.7].

* ``matches(filter, topic)``: does a topic name match a filter (``+`` one level,
  ``#`` this level and every level below, including the parent itself:
  ``a/#`` matches ``a``)?  Topics starting with ``$`` are not matched by a
  filter starting with a wildcard (§4.7.2: ``#`` does not match ``$SYS/...``).
* ``covers(allowed, requested)``: is every topic a *requested* filter can match
  also matched by the *allowed* filter?  That is what a subscribe allow-list
  needs: ``plant/#`` covers ``plant/line1/+`` but not ``#``.
* ``filter_problem(text)``: why a filter is invalid, or "" (wildcards alone in
  their level, ``#`` last, no NUL, 1..65535 bytes of UTF-8).
"""
from __future__ import annotations

MAX_TOPIC_BYTES = 65535
"""An MQTT UTF-8 string is at most 65535 bytes [3.1.1 §1.5.3]."""


def filter_problem(f: str) -> str:
    if not isinstance(f, str) or f == "":
        return "a topic filter must be a non-empty string"
    if "\x00" in f:
        return "a topic filter must not contain NUL"
    if len(f.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        return f"a topic filter is at most {MAX_TOPIC_BYTES} bytes"
    levels = f.split("/")
    for i, lv in enumerate(levels):
        if "#" in lv and (lv != "#" or i != len(levels) - 1):
            return "'#' must be the whole last level of a filter (e.g. plant/#)"
        if "+" in lv and lv != "+":
            return "'+' must be a whole level of a filter (e.g. plant/+/temp)"
    return ""


def matches(flt: str, topic: str) -> bool:
    """Does topic name *topic* match filter *flt*?"""
    if topic.startswith("$") and flt[:1] in ("+", "#"):
        return False
    fl = flt.split("/")
    tl = topic.split("/")
    for i, f in enumerate(fl):
        if f == "#":
            return True
        if i >= len(tl):
            return False
        if f != "+" and f != tl[i]:
            return False
    return len(fl) == len(tl)


def covers(allowed: str, requested: str) -> bool:
    """Is the set of topics *requested* can match a subset of those *allowed* matches?"""
    if requested[:1] in ("+", "#") and allowed[:1] not in ("+", "#"):
        # a leading wildcard reaches every first level; only a leading wildcard covers it
        return False
    if allowed[:1] in ("+", "#") and requested.startswith("$"):
        return False
    al = allowed.split("/")
    rl = requested.split("/")
    for i, a in enumerate(al):
        if a == "#":
            return True               # everything from here down
        if i >= len(rl):
            return False              # requested is shorter (and has no '#' left to reach deeper)
        r = rl[i]
        if r == "#":
            return False              # requested reaches deeper than allowed's remaining fixed levels
        if a == "+":
            continue                  # '+' covers one level: a name or '+'
        if r == "+" or r != a:
            return False
    return len(al) == len(rl)


__all__ = ["filter_problem", "matches", "covers", "MAX_TOPIC_BYTES"]
