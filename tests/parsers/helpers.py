"""Feed wire bytes to a sans-IO connection every way it can arrive (h11's tr()).

    assert_decodes(make_conn, side, wire, expected)

checks the whole buffer at once, byte by byte, every two-way split, and three
copies back to back (several messages in one segment, scapy#4096).
"""
from __future__ import annotations


def _feed_chunks(conn, side, chunks):
    got = []
    for chunk in chunks:
        got.extend(conn.feed(chunk, side))
    return got


def chunkings(wire: bytes):
    yield [wire]
    yield [wire[i : i + 1] for i in range(len(wire))]
    for cut in range(1, len(wire)):
        yield [wire[:cut], wire[cut:]]


def assert_decodes(make_conn, side, wire: bytes, expected: list, *, prime=None) -> None:
    """*prime*: optional list of (side, bytes) fed first (e.g. a request before its response)."""

    def fresh():
        conn = make_conn()
        if prime:
            for s, b in prime:
                conn.feed(b, s)
        return conn

    for chunks in chunkings(wire):
        got = _feed_chunks(fresh(), side, chunks)
        assert got == expected, f"chunking {[len(c) for c in chunks]}: {got!r} != {expected!r}"
    conn = fresh()
    got = conn.feed(wire * 3, side) if not prime else None
    if got is not None:
        assert len(got) == 3 * len(expected), f"three back to back: {got!r}"
