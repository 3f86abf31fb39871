"""The baseline loader never fails with anything but BaselineFormatError, and every error has a position:
mutated exports of a real baseline, random YAML values, any value anywhere in a full baseline."""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.sensor.baseline import yamlio
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.pipeline import Pipeline

PCAP = Path(__file__).resolve().parents[3] / "pcaps" / "attack-scenarios.pcap"
TOKENS = ["", " ", "\n", ":", "- ", "[", "]", "{", "}", "&a ", "*a", "<<: ", "!!str ", "!!binary ", "~", "0x1F",
          "1e9", "-1", ".inf", ".nan", "yes", "\t", "#", "'", '"', "\x00", "\ufeff", "0-", "9" * 5000, ">", "|",
          "? ", "!!python/object:os.system ", "%YAML 1.1\n---\n", "...\n", "---\n", "1e400", "2026-01-01 "]


@functools.lru_cache(maxsize=1)
def exported() -> str:
    b = Baseline()
    pipe = Pipeline([Learner(b, 10.0)])
    pipe.run_file(str(PCAP))
    pipe.finish()
    b.pending["0123456789abcdef0123"] = "pair 10.0.0.1>10.0.0.2 mqtt/1883 subscribe #"
    return yamlio.dump(b)


def _load(text: str) -> None:
    try:
        b = yamlio.load(text, "fuzz.yaml")
    except yamlio.BaselineFormatError as exc:
        assert exc.problems and all(p.line >= 1 and p.column >= 1 and p.message for p in exc.problems)
        assert all(line.startswith("fuzz.yaml:") for line in exc.errors)
        return
    yamlio.dump(b)                 # what loads can be written again


def test_the_export_loads():
    _load(exported())
    assert yamlio.dump(yamlio.load(exported())) == exported()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 120), st.sampled_from(TOKENS), st.integers(0, 3)),
                min_size=1, max_size=4))
def test_mutated_export(edits):
    lines = exported().splitlines(keepends=True)
    for i, col, tok, cut in edits:
        i %= len(lines)
        s = lines[i]
        col = min(col, len(s))
        lines[i] = s[:col] + tok + s[col + cut:]
    _load("".join(lines))


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=12))
_value = st.recursive(_scalar, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                    st.dictionaries(st.text(max_size=8), ch, max_size=4)),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["version", "interval", "learning", "assets", "pairs", "pending", "x"]),
                       _value, max_size=6))
def test_random_documents(doc):
    _load(yaml.safe_dump(doc))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_value_anywhere_in_a_full_baseline(data):
    doc = yaml.safe_load(exported())
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        d = doc
        try:
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = data.draw(_value)
        except (KeyError, IndexError, TypeError):
            continue
    _load(yaml.safe_dump(copy.deepcopy(doc)))
