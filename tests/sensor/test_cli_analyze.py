"""`otwatch analyze` as a user runs it: files, gzip, stdin, bad input, JSON, quiet."""
from __future__ import annotations

import gzip
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"


def otwatch(*args, stdin=None, env_extra=None, check=False):
    env = dict(os.environ)
    env.update(env_extra or {})
    r = subprocess.run([sys.executable, "-m", "otwatch.sensor", *args], input=stdin, capture_output=True,
                       env=env, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(r.stderr.decode())
    return r


def test_summary_on_the_demo_plant():
    r = otwatch("analyze", "--no-inventory", str(DEMO), check=True)
    out = r.stdout.decode()
    assert "5,315 packets" in out
    for line in ("modbus          2,810", "mqtt              642", "opcua             330"):
        assert line in out
    assert "Decode coverage" in out and "Anomalies" in out
    assert r.stderr == b""          # not a terminal: no progress bar


def test_gzip_and_stdin_give_the_same_observations(tmp_path):
    gz = tmp_path / "demo.pcap.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes()))
    plain = otwatch("analyze", "--no-inventory", "-q", "--json", "-", str(DEMO), check=True).stdout
    zipped = otwatch("analyze", "--no-inventory", "-q", "--json", "-", str(gz), check=True).stdout
    piped = otwatch("analyze", "--no-inventory", "-q", "--json", "-", "-", stdin=DEMO.read_bytes(), check=True).stdout
    def without_source(out: bytes) -> tuple[list[str], list[dict]]:
        lines = out.decode().splitlines()
        return ([x for x in lines if '"source.start"' not in x],
                [json.loads(x) for x in lines if '"source.start"' in x])

    (p_lines, p_src), (z_lines, z_src), (s_lines, s_src) = map(without_source, (plain, zipped, piped))
    assert p_lines == z_lines == s_lines
    assert [s["source"] for s in p_src + z_src + s_src] == [str(DEMO), str(gz), "stdin"]
    assert {s["ts"] for s in p_src + z_src + s_src} == {json.loads(p_lines[1])["ts"]}
    lines = plain.decode().splitlines()
    assert json.loads(lines[0]) == {"type": "header", "schema": 1, "producer": "otwatch"}
    types = {json.loads(x)["type"] for x in lines[1:]}
    assert {"flow.start", "flow.end", "host.seen", "link.seen", "message", "aggregate", "anomaly",
            "interval.end", "host.traffic", "name.seen"} <= types


@pytest.mark.parametrize("content,msg", [
    (b"", "empty file"),
    (b"\x00" * 100, "not a pcap or pcapng"),
    (b"\xd4\xc3\xb2\xa1\x02", "too short"),
    (b"\x1f\x8b\x08\x00garbage-gzip", "compressed stream is damaged"),
])
def test_bad_files_get_a_clear_message_not_a_traceback(tmp_path, content, msg):
    f = tmp_path / "bad.pcap"
    f.write_bytes(content)
    r = otwatch("analyze", "--no-inventory", str(f))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert msg in err and "Traceback" not in err


def test_missing_file():
    r = otwatch("analyze", "--no-inventory", "/nonexistent/x.pcap")
    assert r.returncode == 2 and "no such file" in r.stderr.decode()


def test_truncated_capture_is_analysed_and_reported(tmp_path):
    f = tmp_path / "cut.pcap"
    f.write_bytes(DEMO.read_bytes()[:-100])
    r = otwatch("analyze", "--no-inventory", str(f), check=True)
    out = r.stdout.decode()
    assert "capture.truncated_record" in out


def test_port_option_validation():
    r = otwatch("analyze", "--no-inventory", "--port", "modbus=notaport", str(DEMO))
    assert r.returncode == 2 and "PROTOCOL=PORT" in r.stderr.decode()


def test_pure_and_compiled_json_are_byte_identical(tmp_path):
    from otwatch import ext

    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    for cap in sorted((ROOT / "pcaps").glob("*.pcap*")):
        outs = []
        for env in ({"OTWATCH_NO_EXTENSIONS": "1"}, {"OTWATCH_REQUIRE_EXTENSIONS": "1"}):
            e = {k: v for k, v in os.environ.items() if not k.startswith("OTWATCH_")}
            e.update(env)
            r = subprocess.run([sys.executable, "-m", "otwatch.sensor", "analyze", "--no-inventory", "-q",
                                "--every-message", "--json", "-", str(cap)], capture_output=True, env=e,
                               timeout=300)
            assert r.returncode == 0, r.stderr.decode()
            outs.append(r.stdout)
        assert outs[0] == outs[1], cap.name
        assert len(outs[0]) > 1000
