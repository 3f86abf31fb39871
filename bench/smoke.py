#!/usr/bin/env python3
"""A seconds-long benchmark smoke run, for CI: generator + otwatch only.

    python bench/smoke.py [--packets 20000]

Builds a 20k-packet mixed capture in a temporary directory, runs it through the
pipeline in this process (checking that every packet was walked and that
Modbus, MQTT and OPC UA messages all came out), then runs
`otwatch analyze --no-inventory -q` on it as a subprocess with each available
implementation.  Prints the rates; asserts nothing about speed (CI machines
vary), only that everything runs.  ``smoke()`` returns the results for a test.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_capture  # noqa: E402


def smoke(packets: int = 20_000, workdir: str | None = None) -> dict:
    from otwatch import ext
    from otwatch.sensor import observations as O
    from otwatch.sensor.pipeline import Pipeline, Settings

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "smoke.pcap")
        t = time.perf_counter()
        meta = make_capture.build(path, packets, seed=1, quiet=True)
        res: dict = {"generate_s": time.perf_counter() - t, "packets": meta["packets"], "bytes": meta["bytes"]}
        assert meta["packets"] == packets, meta

        protocols: set = set()

        class Seen:
            def observe(self, obs):
                if isinstance(obs, O.Message):
                    protocols.add(obs.protocol)

        pipe = Pipeline([Seen()], Settings())
        pipe.run_file(path)
        pipe.finish()
        stats = pipe.stats()
        assert stats["capture.packets"] == packets, stats["capture.packets"]
        assert {"modbus", "mqtt", "opcua"} <= protocols, protocols
        res["in_process_implementation"] = pipe.implementation

        impls = ["pure"] + (["compiled"] if ext.IMPLEMENTATION == "compiled" else [])
        for impl in impls:
            env = dict(os.environ)
            env.pop("OTWATCH_NO_EXTENSIONS", None)
            env.pop("OTWATCH_REQUIRE_EXTENSIONS", None)
            env["OTWATCH_NO_EXTENSIONS" if impl == "pure" else "OTWATCH_REQUIRE_EXTENSIONS"] = "1"
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "otwatch.sensor", "analyze", "--no-inventory", "-q", path],
                               env=env, capture_output=True, text=True)
            el = time.perf_counter() - t
            assert p.returncode == 0, (impl, p.returncode, p.stderr[-2000:])
            res[impl] = {"seconds": el, "pps": packets / el}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=20_000)
    a = ap.parse_args(argv)
    r = smoke(a.packets)
    line = f"smoke: {r['packets']:,} packets, {r['bytes'] / 1e6:.1f} MB generated in {r['generate_s']:.2f} s"
    for impl in ("compiled", "pure"):
        if impl in r:
            line += f"; {impl} analyze {r[impl]['seconds']:.2f} s ({r[impl]['pps']:,.0f} packets/s incl. start-up)"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
