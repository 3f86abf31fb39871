"""IntervalSet against a plain Python set of addresses (hypothesis), and its text form."""
from hypothesis import given
from hypothesis import strategies as st

from otwatch.sensor.baseline import intervals
from otwatch.sensor.baseline.intervals import IntervalSet

ranges = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1])),
                  max_size=30)


@given(ranges, st.integers(0, 340), st.integers(0, 20))
def test_same_as_a_set(rs, lo, n):
    s, ref = IntervalSet(), set()
    for a, b in rs:
        new = s.add(a, b)
        assert new == (not set(range(a, b + 1)) <= ref)
        ref |= set(range(a, b + 1))
    hi = lo + n
    assert s.covers(lo, hi) == (set(range(lo, hi + 1)) <= ref)
    missing = set()
    for a, b in s.missing(lo, hi):
        missing |= set(range(a, b + 1))
    assert missing == set(range(lo, hi + 1)) - ref
    # disjoint, sorted, not adjacent
    spans = list(s)
    assert all(spans[i][1] + 1 < spans[i + 1][0] for i in range(len(spans) - 1))
    assert IntervalSet.parse(s.text()) == s


@given(ranges, st.integers(0, 300), st.integers(0, 30))
def test_remove(rs, lo, n):
    s, ref = IntervalSet(rs), set()
    for a, b in rs:
        ref |= set(range(a, b + 1))
    s.remove(lo, lo + n)
    ref -= set(range(lo, lo + n + 1))
    got = set()
    for a, b in s:
        got |= set(range(a, b + 1))
    assert got == ref


def test_text_form():
    s = IntervalSet([(0, 9), (10, 19), (7, 7), (100, 103), (200, 200)])
    assert s.text() == "0-19,100-103,200"
    assert IntervalSet.parse(" 0-19, 100-103,200 ") == s
    for bad in ("1-", "a", "5-3", "-4"):
        try:
            IntervalSet.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_bounded(monkeypatch):
    monkeypatch.setattr(intervals, "MAX_RANGES", 8)
    s = IntervalSet()
    for i in range(100):
        s.add(i * 10, i * 10)       # a sweep of single registers
    assert len(s) <= 8 and s.coarsened > 0
    for i in range(100):
        assert s.covers(i * 10, i * 10)     # coarser, never lost
