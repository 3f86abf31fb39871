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
    if env_extra and {"OTWATCH_NO_EXTENSIONS", "OTWATCH_REQUIRE_EXTENSIONS"} & env_extra.keys():
        # a kernel switch asked for by the test replaces the run's (CI sets OTWATCH_REQUIRE_EXTENSIONS,
        # which contradicts OTWATCH_NO_EXTENSIONS)
        env.pop("OTWATCH_NO_EXTENSIONS", None)
        env.pop("OTWATCH_REQUIRE_EXTENSIONS", None)
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


@pytest.mark.parametrize("make,expect", [
    (lambda d: d / "missing.pcap", "no such file"),
    (lambda d: d, "is a folder, not a capture file"),
    (lambda d: (d / "notes.txt").write_text("hello, not a capture") and d / "notes.txt", "not a pcap or pcapng"),
    (lambda d: (d / "empty.pcap").write_bytes(b"") or d / "empty.pcap", "empty file"),
])
def test_fatal_input_is_one_line_exit_2_nothing_else(tmp_path, make, expect):
    path = make(tmp_path)
    db = tmp_path / "db" / "inv.db"
    r = otwatch("analyze", str(path), env_extra={"OTWATCH_DB": str(db)})
    err = r.stderr.decode()
    assert r.returncode == 2
    assert r.stdout == b""                                  # no empty summary
    assert err.splitlines() == [f"otwatch: {path}: {expect}" + err.split(expect, 1)[1].rstrip("\n")]
    assert err.count(str(path)) == 1                        # the path once
    assert not db.exists()                                  # refused before anything was written


def test_bad_file_among_good_ones_stops_before_any_work(tmp_path):
    r = otwatch("analyze", "--no-inventory", str(DEMO), str(tmp_path / "nope.pcap"))
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode().splitlines() == [f"otwatch: {tmp_path / 'nope.pcap'}: no such file"]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag):
    r = otwatch(flag, check=True)
    out = r.stdout.decode()
    assert out.startswith("otwatch 0.") and "kernels" in out and len(out.splitlines()) == 1


def test_json_output_option_is_o_like_the_other_commands(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    otwatch("analyze", "--no-inventory", "-q", "-o", str(a), str(DEMO), check=True)
    otwatch("analyze", "--no-inventory", "-q", "--json", str(b), str(DEMO), check=True)   # older spelling
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 1000


def test_db_option_has_one_text_everywhere():
    """Every command with --db (walked from the click tree, so a new one is covered) says the same about it."""
    import click

    from otwatch.sensor.cli import cli
    from otwatch.sensor.clikit import DB_HELP

    seen = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):          # the top group loads its commands lazily
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), path + [name])
        for p in cmd.params:
            if "--db" in getattr(p, "opts", ()) and path[:1] != ["tui"]:     # the TUI's --db is a way in, not a store
                seen.append(path)
                assert p.help.startswith(DB_HELP), (path, p.help)

    walk(cli, [])
    assert {tuple(x[:1]) for x in seen} >= {("analyze",), ("inventory",), ("alerts",), ("sensor",)}, seen


def test_several_files_each_number_frames_from_one(tmp_path):
    """Wireshark numbers frames per file: the second file's frames restart at 1 after its source.start."""
    out = otwatch("analyze", "--no-inventory", "-q", "-o", "-", str(DEMO), str(DEMO), check=True).stdout
    lines = [json.loads(x) for x in out.decode().splitlines()[1:]]
    starts = [i for i, x in enumerate(lines) if x["type"] == "source.start"]
    assert len(starts) == 2 and starts[0] == 0
    first = [x["frame"] for x in lines[:starts[1]] if "frame" in x]
    second = [x["frame"] for x in lines[starts[1]:] if "frame" in x]
    assert min(first) == 1 and min(second) == 1 and max(first) <= 5315 and max(second) == 5315
    r = otwatch("analyze", "--no-inventory", str(DEMO), str(DEMO), check=True).stdout.decode()
    assert "corrupt_record" not in r and "10,630 packets" in r


def test_several_files_pure_and_compiled_agree():
    """Engine.new_source() on both paths: two files in one run give byte-identical JSON lines."""
    files = [str(ROOT / "pcaps" / "opcua-security.pcap"), str(ROOT / "pcaps" / "protocol-corners.pcap.gz")]
    outs = [otwatch("analyze", "--no-inventory", "-q", "-o", "-", *files, env_extra=env, check=True).stdout
            for env in ({"OTWATCH_NO_EXTENSIONS": "1"}, {"OTWATCH_REQUIRE_EXTENSIONS": "1"})]
    assert outs[0] == outs[1] and outs[0].count(b'"source.start"') == 2


def test_analyze_sets_the_collectors_thresholds():
    """A run over captures sets clikit.GC_THRESHOLDS (a flood's young collections were half its CPU)."""
    import gc

    from click.testing import CliRunner

    from otwatch.sensor.cli import cli
    from otwatch.sensor.clikit import GC_THRESHOLDS

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        r = CliRunner().invoke(cli, ["analyze", "-q", "--no-inventory", str(DEMO)])
        assert r.exit_code == 0, r.output
        assert gc.get_threshold() == GC_THRESHOLDS != (700, 10, 10)
    finally:
        gc.set_threshold(*before)
