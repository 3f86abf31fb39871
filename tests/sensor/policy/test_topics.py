"""MQTT topic filter matching and filter containment (MQTT 3.1.1 / 5.0 §4.7)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwatch.sensor.policy.topics import covers, filter_problem, matches


@pytest.mark.parametrize("flt,topic,ok", [
    ("plant/line1/temp", "plant/line1/temp", True),
    ("plant/line1/temp", "plant/line1/Temp", False),        # case matters
    ("plant/+/temp", "plant/line1/temp", True),
    ("plant/+/temp", "plant/line1/x/temp", False),
    ("plant/+", "plant/", True),                            # an empty level is a level
    ("plant/#", "plant", True),                             # '#' includes the parent
    ("plant/#", "plant/a/b/c", True),
    ("plant/#", "plantx/a", False),
    ("#", "anything/at/all", True),
    ("#", "$SYS/broker/uptime", False),                     # wildcards first do not reach $ topics
    ("+/broker/uptime", "$SYS/broker/uptime", False),
    ("$SYS/#", "$SYS/broker/uptime", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
])
def test_matches(flt, topic, ok):
    assert matches(flt, topic) is ok


@pytest.mark.parametrize("allowed,requested,ok", [
    ("plant/#", "plant/line1/+", True),
    ("plant/#", "plant/#", True),
    ("plant/#", "plant", True),
    ("plant/#", "#", False),
    ("#", "#", True),
    ("#", "plant/#", True),
    ("#", "$SYS/#", False),
    ("$SYS/#", "$SYS/broker/#", True),
    ("plant/+/temp", "plant/line1/temp", True),
    ("plant/+/temp", "plant/+/temp", True),
    ("plant/+/temp", "plant/#", False),
    ("plant/line1/temp", "plant/+/temp", False),
    ("plant/+", "plant/line1/#", False),
    ("+/+", "a/b", True),
    ("+", "#", False),
])
def test_covers(allowed, requested, ok):
    assert covers(allowed, requested) is ok


@pytest.mark.parametrize("flt,bad", [
    ("a/b", ""), ("#", ""), ("+", ""), ("a/+/b/#", ""), ("a//b", ""),
    ("", "non-empty"), ("a/#/b", "'#'"), ("a#", "'#'"), ("a/b+", "'+'"), ("a\x00b", "NUL"),
    ("x" * 65536, "65535"),
])
def test_filter_problem(flt, bad):
    why = filter_problem(flt)
    assert (bad in why and why) if bad else why == ""


_level = st.sampled_from(["a", "b", "c", "+", "#", ""])


@st.composite
def _filter(draw):
    levels = draw(st.lists(_level, min_size=1, max_size=4))
    if "#" in levels:
        levels = levels[: levels.index("#") + 1]
    return "/".join(levels)


@given(_filter(), _filter(), st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=1, max_size=5))
def test_covers_is_sound(allowed, requested, topic_levels):
    """If allowed covers requested, every topic requested matches is matched by allowed."""
    topic = "/".join(topic_levels)
    if covers(allowed, requested) and matches(requested, topic):
        assert matches(allowed, topic)
