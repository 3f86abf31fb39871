"""``otwatch analyze --memcap``: sizes read as the budget reads them, a bad value is one line and
exit status 2, and a small memcap under a flood evicts (counted, reported once an interval) while
the messages of the session the flood runs beside come out the same, on both kernels."""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import struct
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)


def otwatch(*args, impl=None):
    env = {k: v for k, v in os.environ.items() if k not in ("OTWATCH_NO_EXTENSIONS", "OTWATCH_REQUIRE_EXTENSIONS")}
    if impl == "pure":
        env["OTWATCH_NO_EXTENSIONS"] = "1"
    elif impl == "compiled":
        env["OTWATCH_REQUIRE_EXTENSIONS"] = "1"
    else:
        env.update({k: v for k, v in os.environ.items() if k.startswith("OTWATCH_")})
    return subprocess.run([sys.executable, "-m", "otwatch.sensor", *args], capture_output=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("size", ["128M", "256m", "1G", "1.5G", "600MiB", str(300 * 1024 * 1024)])
def test_sizes_are_accepted(size):
    r = otwatch("analyze", "--no-inventory", "--memcap", size, str(DEMO))
    assert r.returncode == 0, r.stderr.decode()
    assert "5,315 packets" in r.stdout.decode()


@pytest.mark.parametrize("size,why", [
    ("12X", "not a size: '12X' (use e.g. 512M or 2G)"),
    ("lots", "not a size: 'lots' (use e.g. 512M or 2G)"),
    ("-1G", "not a size: '-1G' (use e.g. 512M or 2G)"),
    ("", "not a size: '' (use e.g. 512M or 2G)"),
    ("64M", "memcap 64 MiB is below the minimum of 128 MiB"),
    ("0", "memcap 0 MiB is below the minimum of 128 MiB"),
])
def test_a_bad_memcap_is_one_line_and_exit_2(tmp_path, size, why):
    db = tmp_path / "inv.db"
    r = otwatch("analyze", "--db", str(db), "--memcap", size, str(DEMO))
    assert r.returncode == 2
    assert r.stdout == b""
    assert r.stderr.decode().splitlines() == [f"otwatch: --memcap: {why}"]
    assert not db.exists()          # refused before anything was written


def _records(path):
    data = path.read_bytes()
    hdr, off, out = data[:24], 24, []
    while off < len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        out.append((sec + usec / 1e6, data[off:off + 16 + incl]))
        off += 16 + incl
    return hdr, out


@pytest.fixture(scope="module")
def flood_beside_a_session(tmp_path_factory):
    """A SYN flood from 10,000 distinct sources (past the half-open records of a 128 MiB memcap,
    3,276: its bare SYNs past the scan budget are records, not flows) interleaved by time with a
    Modbus register sweep: one pcap."""
    d = tmp_path_factory.mktemp("memcap")
    make_hostile.build("syn-flood", str(d / "syn.pcap"), 20_000, quiet=True)
    make_hostile.build("modbus-registers", str(d / "regs.pcap"), 6_000, quiet=True)
    hdr, a = _records(d / "syn.pcap")
    _, b = _records(d / "regs.pcap")
    merged = sorted(a + b, key=lambda r: r[0])      # stable: equal times keep each file's order
    out = d / "flood.pcap"
    out.write_bytes(hdr + b"".join(r for _, r in merged))
    return out


def _run_json(path, impl, *extra):
    r = otwatch("analyze", "--no-inventory", "--json", "-", *extra, str(path), impl=impl)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def _messages(lines):
    """Messages without the ids that the evictions renumber (a flow or link made again is a new one)."""
    out = []
    for o in lines:
        if o["type"] == "message":
            o = dict(o)
            o.pop("link_id")
            o.pop("flow_id")
            out.append(o)
    return out


def test_a_small_memcap_on_a_flood_evicts_counts_and_keeps_the_messages(flood_beside_a_session, impl):
    small = _run_json(flood_beside_a_session, impl, "--memcap", "128M")
    default = _run_json(flood_beside_a_session, impl)
    s = [json.loads(x) for x in small.splitlines()]
    d = [json.loads(x) for x in default.splitlines()]
    reports = [o for o in s if o["type"] == "anomaly" and o["id"] == "memcap.evicted"]
    assert reports, "no memcap.evicted at 128M"
    assert "flows.evicted_half_open" in reports[0]["detail"]
    assert not [o for o in d if o["type"] == "anomaly" and o["id"] == "memcap.evicted"]
    ends = [o for o in s if o["type"] == "flow.end"]
    assert ends and not any(o["reason"] == "cap" for o in ends)     # the flood evicts no reported flow
    msgs = _messages(s)
    assert len(msgs) > 100 and msgs == _messages(d)
    # the summary says so too
    r = otwatch("analyze", "--no-inventory", "--memcap", "128M", str(flood_beside_a_session), impl=impl)
    assert r.returncode == 0 and "memcap.evicted" in r.stdout.decode()


def test_a_small_memcap_gives_the_same_bytes_on_both_kernels(flood_beside_a_session):
    from otwatch import ext

    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    pure = _run_json(flood_beside_a_session, "pure", "--memcap", "128M")
    compiled = _run_json(flood_beside_a_session, "compiled", "--memcap", "128M")
    assert b"memcap.evicted" in pure
    assert pure == compiled
