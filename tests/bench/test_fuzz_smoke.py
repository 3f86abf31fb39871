"""The fuzz harness (bench/fuzz.py) in seconds: every target, a fixed seed, a
fixed number of inputs (and a time cap), so that the harness and its oracles
cannot rot.  The long runs are documented in docs/fuzzing.md.

A finding fails the test unless its signature is listed in KNOWN_OPEN (an
open bug kept as a strict xfail in tests/bench/test_fuzz_regressions.py).
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import fuzz  # noqa: E402
import fuzz_targets  # noqa: E402

# open bugs in ext/ (see test_fuzz_regressions.py); anything else is new
KNOWN_OPEN: list[str] = [
    # signatures (regexes) of open bugs that a reproducer in test_fuzz_regressions.py
    # keeps as a strict xfail (bugs 1-8 of docs/fuzzing.md are fixed)
    # (bugs 1-9 of docs/fuzzing.md are fixed; none open)
]

BUDGET = {  # target: (inputs, seconds at most)
    "engine": (120, 4.0), "modbus": (60, 2.5), "mqtt": (100, 2.0), "opcua": (150, 2.0),
    "decoders": (800, 1.5), "hostnames": (800, 1.0), "tls": (600, 1.0), "certs": (200, 1.5),
}


@pytest.fixture(autouse=True)
def _alarm():
    old = signal.signal(signal.SIGALRM, fuzz._on_alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_fuzz_target_smoke(name, tmp_path):
    n, seconds = BUDGET[name]
    t = fuzz_targets.TARGETS[name]
    run = fuzz.Run(t, str(tmp_path / "findings"), None, minimise_seconds=0, quiet=True)
    t0 = time.time()
    fuzz.random_loop(run, seconds, seed=12345, max_execs=n)
    assert run.execs > 0
    assert time.time() - t0 < seconds + t.timeout
    new = [f for f in run.findings.values() if not any(re.search(p, f["signature"]) for p in KNOWN_OPEN)]
    assert not new, "\n".join("%s: %s (%s)" % (f["signature"], f["detail"], f["file"]) for f in new)


def test_seeds_pass_every_oracle():
    """The unmutated seeds are valid input: a finding on them is a bug or a broken oracle."""
    for name, t in fuzz_targets.TARGETS.items():
        for s in t.seeds()[:8]:
            res = fuzz.outcome(t, s, 30.0)
            assert res is None or any(re.search(p, res[2]) for p in KNOWN_OPEN), (name, res[:3])


def test_harness_reports_and_minimises(tmp_path):
    """A target that breaks its contract is reported, minimised and saved."""
    def run(data, **kw):
        if b"\xff\xfe" in data:
            raise KeyError("boom")
        if data.count(b"A") > 3:
            raise fuzz_targets.Finding("toy.oracle", "too many A: %d" % data.count(b"A"), sig="A")
    t = fuzz_targets.Target("toy", run, lambda: [b"hello"], 256, 5.0, 1 << 20, 100)
    r = fuzz.Run(t, str(tmp_path), None, minimise_seconds=5, quiet=True)
    r.one(b"xxxxxxxx\xff\xfexxxxxxxx")
    r.one(b"zAzzAzzAzzAzz")
    sigs = {f["signature"]: f for f in r.findings.values()}
    assert set(sigs) == {"toy:uncaught:KeyError:?", "toy:toy.oracle:A"}
    with open(sigs["toy:uncaught:KeyError:?"]["file"], "rb") as fh:
        assert fh.read() == b"\xff\xfe"
    with open(sigs["toy:toy.oracle:A"]["file"], "rb") as fh:
        assert fh.read() == b"AAAA"


def test_harness_catches_a_hang():
    def run(data, **kw):
        while True:
            pass
    t = fuzz_targets.Target("toy", run, lambda: [b""], 16, 0.2, 1 << 20, 100)
    res = fuzz.outcome(t, b"x", t.timeout)
    assert res is not None and res[0] == "hang"


def test_script_encoding_round_trips():
    ops = [("feed", 0, b"abc"), ("gap", 1, 2**31), ("eof", 0), ("feed", 1, b"")]
    config, back = fuzz_targets.decode_script(fuzz_targets.encode_script(ops, config=5))
    assert config == 5 and back == ops


def test_signature_does_not_depend_on_the_checkout_folder_name(tmp_path):
    """A test's own code under a folder named otwatch (a clone in ~/src/otwatch) is not project code."""
    path = tmp_path / "otwatch" / "tests" / "bench" / "test_x.py"
    path.parent.mkdir(parents=True)
    path.write_text("def run():\n    raise KeyError('boom')\n")
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    try:
        ns["run"]()
    except KeyError as exc:
        tb = exc.__traceback__
    assert fuzz._innermost(tb) == "?"
    from otwatch.parsers import common

    try:
        common.escape(None)          # raises inside project code
    except Exception as exc:         # noqa: BLE001
        assert fuzz._innermost(exc.__traceback__).startswith("common.py:")
