"""The adversarial captures of bench/make_hostile.py through both kernels: the same
observations (compiled == pure), caps and overflows included, and observations that
stay bounded as the sweep goes on."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from otwatch.parsers.limits import Limits
from otwatch.sensor import jsonout
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)

PACKETS = 6000
SMALL = Limits(link_keys_max=64, coverage_max_runs=8)


def observations(path, impl, limits):
    lines = []

    class C:
        def observe(self, o):
            lines.append(jsonout.dumps(o))

    p = Pipeline([C()], Settings(implementation=impl, limits=limits))
    p.run_file(str(path))
    p.finish()
    return lines, p.stats()


@pytest.mark.parametrize("kind", make_hostile.KINDS)
def test_compiled_and_pure_agree_on_the_sweeps(tmp_path, kind):
    from otwatch import ext
    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    cap = tmp_path / f"{kind}.pcap"
    make_hostile.build(kind, str(cap), PACKETS, quiet=True)
    pure, pstats = observations(cap, "pure", SMALL)
    comp, cstats = observations(cap, "compiled", SMALL)
    assert pure == comp
    assert pstats == cstats


@pytest.mark.parametrize("kind", ["modbus-registers", "modbus-units", "mqtt-topics"])
def test_key_overflow_is_reported_once_per_link_direction(tmp_path, kind):
    cap = tmp_path / f"{kind}.pcap"
    make_hostile.build(kind, str(cap), PACKETS, quiet=True)
    lines, stats = observations(cap, None, SMALL)
    proto = kind.split("-")[0]
    overflow = [x for x in lines if f'"id":"{proto}.key_overflow"' in x]
    assert 1 <= len(overflow) <= 2
    if kind == "modbus-units":
        return      # exceptions are always detailed (per-source scan summaries: not built yet)
    messages = sum(1 for x in lines if x.startswith('{"type":"message"'))
    # bounded by the cap (both directions) plus session messages, not by the packets
    assert messages <= 2 * SMALL.link_keys_max + 16
