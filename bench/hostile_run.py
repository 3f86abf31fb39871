#!/usr/bin/env python3
"""Throughput and peak RSS of ``otwatch analyze`` on captures, beside tshark, in one run.

    python bench/hostile_run.py bench/out/syn-flood-1000k.pcap bench/out/mqtt-topics-4000k.pcap ...
        [--modes db,noinv,json] [--tshark] [--otwatch .venv/bin/otwatch] [--markdown]

Modes (each a fresh process under ``/usr/bin/time -f '%e %M'``):

* ``db``     ``otwatch analyze -q --db NEW FILE`` (a new inventory database each run)
* ``noinv``  ``otwatch analyze -q --no-inventory FILE``
* ``json``   ``otwatch analyze -q --json /dev/null FILE`` (with a new inventory database)
* ``tshark`` (with ``--tshark``) ``tshark -r FILE -T fields`` extracting the OT fields
             (frame number, Modbus function code and unit, MQTT message type and topic,
             OPC UA service id), as bench/run.py's baseline does

Prints one row per (capture, mode): packets, seconds, packets/s, peak RSS (MB), and
the ratio to tshark when measured.  One run each, no repetition: this is for the
hostile captures, where the differences are large; bench/run.py is the careful
interleaved benchmark.
"""
from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile

TSHARK_FIELDS = ["frame.number", "mbtcp.unit_id", "modbus.func_code", "mqtt.msgtype", "mqtt.topic",
                 "opcua.servicenodeid.numeric"]


def count_packets(path: str) -> int:
    """Records in a classic pcap (the captures bench/ makes)."""
    n = 0
    with open(path, "rb") as f:
        f.seek(24)
        rec = struct.Struct("<IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return n
            incl = rec.unpack(h)[2]
            f.seek(incl, 1)
            n += 1


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        r = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %M"] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
        sec, kb = tf.read().split()[-2:]
    return float(sec), int(kb) / 1024


def command(mode: str, otwatch: str, path: str, db: str) -> list[str]:
    if mode == "db":
        return [otwatch, "analyze", "-q", "--db", db, path]
    if mode == "noinv":
        return [otwatch, "analyze", "-q", "--no-inventory", path]
    if mode == "json":
        return [otwatch, "analyze", "-q", "--db", db, "--json", "/dev/null", path]
    if mode == "tshark":
        cmd = ["tshark", "-n", "-r", path, "-T", "fields"]
        for f in TSHARK_FIELDS:
            cmd += ["-e", f]
        return cmd
    raise ValueError(mode)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--modes", default="db,noinv,json")
    ap.add_argument("--tshark", action="store_true")
    ap.add_argument("--otwatch", default=os.path.join(os.path.dirname(sys.executable), "otwatch"))
    a = ap.parse_args(argv)
    modes = a.modes.split(",") + (["tshark"] if a.tshark else [])
    print("| capture | packets | mode | s | packets/s | peak RSS MB | × tshark |")
    print("|---|---|---|---|---|---|---|")
    for path in a.captures:
        n = count_packets(path)
        rate = {}
        rows = []
        for mode in modes:
            with tempfile.TemporaryDirectory() as d:
                sec, mb = timed(command(mode, a.otwatch, path, os.path.join(d, "new.db")))
            rate[mode] = n / sec if sec else float("inf")
            rows.append((mode, sec, mb))
        for mode, sec, mb in rows:
            ratio = f"{rate[mode] / rate['tshark']:.1f}" if "tshark" in rate and mode != "tshark" else ""
            print(f"| {os.path.basename(path)} | {n:,} | {mode} | {sec:.2f} | {rate[mode]:,.0f} | {mb:,.0f} | {ratio} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
