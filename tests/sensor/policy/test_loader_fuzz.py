"""The loader never fails with anything but PolicyError: mutated policies, random YAML values."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.sensor.policy import PolicyError, parse_policy

DEMO = (Path(__file__).resolve().parents[3] / "rules" / "demo-plant.yaml").read_text()
LINES = DEMO.splitlines(keepends=True)
TOKENS = ["", " ", "\n", ":", "- ", "[", "]", "{", "}", "&a ", "*a", "<<: ", "!!str ", "!!binary ", "~", "0x1F",
          "1e9", "-1", ".inf", "yes", "\t", "#", "'", '"', "\x00", "\ufeff", "0-", "65536", "::1/129",
          "10:10:10:10:10:10", "? ", "!!python/object:os.system ", "%YAML 1.1\n---\n", "...\n", "---\n"]


def _parse(text: str) -> None:
    try:
        parse_policy(text, "fuzz.yaml")
    except PolicyError as exc:
        assert exc.problems and all(p.line >= 1 and p.column >= 1 and p.message for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(LINES) - 1), st.integers(0, 80), st.sampled_from(TOKENS),
                          st.integers(0, 3)), min_size=1, max_size=4))
def test_mutated_demo_policy(edits):
    lines = list(LINES)
    for i, col, tok, cut in edits:
        s = lines[i]
        col = min(col, len(s))
        lines[i] = s[:col] + tok + s[col + cut:]
    _parse("".join(lines))


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
                    st.text(max_size=12))
_value = st.recursive(_scalar, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                    st.dictionaries(st.text(max_size=8), ch, max_size=4)),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["version", "zones", "conduits", "detections", "name", "x"]), _value,
                       max_size=5))
def test_random_documents(doc):
    import yaml

    _parse(yaml.safe_dump(doc))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _skeleton():
    import yaml

    import importlib.util

    spec = importlib.util.spec_from_file_location("policy_test_language", Path(__file__).with_name("test_language.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    FULL = mod.FULL

    return yaml.safe_load(FULL)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_value_anywhere_in_a_full_policy(data):
    import copy

    import yaml

    doc = _skeleton()
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
    _parse(yaml.safe_dump(copy.deepcopy(doc)))
