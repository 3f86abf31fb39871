#!/usr/bin/env python3
"""Issue 12's throughput proof: otwatch, tshark, dpkt and scapy side by side on varied real-stack traffic.

    python bench/varied_run.py                      # varied 0.4 M + 1.6 M and the steady plant 1.6 M
    python bench/varied_run.py --write-doc          # ... and update docs/performance.md
    python bench/varied_run.py --repeat 1 --sizes 400000 --skip steady,scapy   # quicker

Captures:

* ``varied-<N>``: bench/make_varied.py's real-stack base capture
  (bench/out/varied-base.pcap, made with ``sudo python bench/make_varied.py base``;
  built here when missing and we are root) grown to N packets with
  ``make_varied.py grow`` (cached in bench/out/, rebuilt when the base or the
  generator changes);
* ``mixed-1600000``: bench/make_capture.py's steady plant (bench/run.py's capture).

On each, every contender in its own process, pinned to one CPU, from the page
cache, measured with bench/run.py's ``measure`` (CPU time of the child, wall
time, peak RSS from GNU time, peak private memory sampled):

  db       otwatch analyze -q --db NEW FILE                   (compiled kernels required)
  json     otwatch analyze -q --db NEW --json /dev/null FILE
  noinv    otwatch analyze -q --no-inventory FILE
  tshark   tshark -n -r FILE -T fields -e ... (bench/run.py's fields)  on a prefix
  dpkt     bench/baselines.py dpkt                              on a prefix
  scapy    bench/baselines.py scapy                             on a prefix

otwatch rows are interleaved over ``--repeat`` rounds and keep their best CPU
time (and their highest peak RSS).  Slow contenders' full-file times are
extrapolated from their rate on the prefix and marked.  Rates are packets over
CPU seconds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
DOC = os.path.join(ROOT, "docs", "performance.md")
sys.path.insert(0, HERE)

import make_varied  # noqa: E402
import run as bench  # noqa: E402  (measure, prefix, warm, capture, tshark_cmd, machine, fmt_rate)

BASE = os.path.join(OUT, "varied-base.pcap")
BEGIN = "<!-- bench/varied_run.py: generated from here -->"
END = "<!-- bench/varied_run.py: generated up to here -->"

# issue 12's targets
TARGET_DB = 1_000_000          # packets/s, analyze -q --db NEW, varied capture
TARGET_JSON = 600_000          # packets/s, with --json /dev/null
TARGET_JSON_X_TSHARK = 25.0
TARGET_STEADY = 2_000_000      # packets/s end to end on the steady plant
RSS_SAME = 0.10                # "the same" peak RSS at 0.4 M and 1.6 M: within 10 %


def _digest(*paths: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    with open(make_varied.__file__, "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:12]


def varied(packets: int, groups: int, reuse: bool = False) -> tuple[str, dict]:
    if not os.path.exists(BASE):
        if os.geteuid() != 0:
            raise SystemExit(f"{BASE} missing: run `sudo python bench/make_varied.py base` first")
        print("building the real-stack base capture (~2 min) ...", file=sys.stderr)
        make_varied.build_base(Path(BASE), 70.0)
    path = os.path.join(OUT, f"varied-{'reuse-' if reuse else ''}{packets}.pcap")
    meta_path = path[:-5] + ".json"
    digest = _digest(BASE)
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("digest") == digest and meta.get("groups") == groups and \
                meta.get("reuse_sites") == reuse and os.path.getsize(path) == meta.get("bytes"):
            return path, meta
    print(f"growing {os.path.relpath(path, ROOT)} ({packets:,} packets) ...", file=sys.stderr)
    meta = make_varied.grow(Path(BASE), Path(path), packets, groups, reuse)
    meta["digest"] = digest
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return path, meta


def otwatch(mode: str, path: str, dbdir: str) -> list[str]:
    cmd = [sys.executable, "-m", "otwatch.sensor", "analyze", "-q"]
    if mode == "noinv":
        return cmd + ["--no-inventory", path]
    fd, db = tempfile.mkstemp(prefix="inv-", suffix=".db", dir=dbdir)
    os.close(fd)
    os.unlink(db)
    cmd += ["--db", db]
    if mode == "json":
        cmd += ["--json", "/dev/null"]
    return cmd + [path]


MODES = {"db": "otwatch analyze -q --db NEW", "json": "otwatch analyze -q --db NEW --json /dev/null",
         "noinv": "otwatch analyze -q --no-inventory", "tshark": "tshark -T fields",
         "dpkt": "dpkt loop (L2-L4)", "scapy": "scapy (modbus, mqtt)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="400000,1600000", help="varied capture sizes")
    ap.add_argument("--reuse-sizes", default="1600000",
                    help="sizes of the --reuse-sites variant (the same sites every epoch); '' for none")
    ap.add_argument("--steady-packets", type=int, default=1_600_000)
    ap.add_argument("--groups", type=int, default=make_varied.DEFAULT_GROUPS)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds of the otwatch rows")
    ap.add_argument("--tshark-packets", type=int, default=200_000)
    ap.add_argument("--dpkt-packets", type=int, default=400_000)
    ap.add_argument("--scapy-packets", type=int, default=20_000)
    ap.add_argument("--skip", default="", help="comma-separated: steady,json,noinv,tshark,dpkt,scapy")
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--write-doc", action="store_true")
    ap.add_argument("--json", metavar="PATH", help="also write raw results as JSON")
    a = ap.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    cpu = a.cpu if a.cpu is not None else max(os.sched_getaffinity(0))
    facts = bench.machine()
    env = bench.env_with(OTWATCH_REQUIRE_EXTENSIONS="1")

    caps = []
    for n in sorted(int(x) for x in a.sizes.split(",") if x):
        p, m = varied(n, a.groups)
        caps.append({"name": f"varied {n / 1e6:g} M", "path": p, "meta": m})
    for n in sorted(int(x) for x in a.reuse_sizes.split(",") if x):
        p, m = varied(n, a.groups, reuse=True)
        caps.append({"name": f"same sites {n / 1e6:g} M", "path": p, "meta": m})
    if "steady" not in skip:
        p, m = bench.capture(a.steady_packets)
        caps.append({"name": f"steady plant {a.steady_packets / 1e6:g} M", "path": p, "meta": m})

    modes = [m for m in ("db", "json", "noinv") if m not in skip]
    dbdir = tempfile.mkdtemp(prefix="otwatch-varied-db-")
    results = []
    try:
        for cap in caps:
            bench.warm(cap["path"])
        runs: dict = {}
        for _ in range(a.repeat):
            for ci, cap in enumerate(caps):
                for mode in modes:
                    r = bench.measure(otwatch(mode, cap["path"], dbdir), env, cpu)
                    runs.setdefault((ci, mode), []).append(r)
                    print(f"  {cap['name']:<18} {mode:<6} cpu {r['cpu']:6.2f} s  rss {r['maxrss_kb'] / 1024:5.0f} MB",
                          file=sys.stderr)
        for ci, cap in enumerate(caps):
            n, nbytes = cap["meta"]["packets"], cap["meta"]["bytes"]
            rows = []
            for mode in modes:
                b = bench.best(runs[(ci, mode)])
                rows.append(dict(bench.row(MODES[mode], b, n, nbytes, n, nbytes), mode=mode,
                                 spread=[x["cpu"] for x in runs[(ci, mode)]]))
            others = [("tshark", a.tshark_packets, lambda p: bench.tshark_cmd(p)),
                      ("dpkt", a.dpkt_packets, lambda p: [sys.executable, os.path.join(HERE, "baselines.py"), "dpkt", p]),
                      ("scapy", a.scapy_packets,
                       lambda p: [sys.executable, os.path.join(HERE, "baselines.py"), "scapy", p])]
            for mode, k, cmd in others:
                if mode in skip:
                    continue
                if cap is not caps[0] and not cap["name"].startswith("steady") and mode != "tshark":
                    continue            # the L2-L4 loops do not care which varied size; measured on the first
                p, k2, b2 = (cap["path"], n, nbytes) if k <= 0 or k >= n else bench.prefix(cap["path"], k)
                bench.warm(p)
                r = bench.measure(cmd(p), None, cpu, stdout=subprocess.PIPE)
                rows.append(dict(bench.row(MODES[mode], r, k2, b2, n, nbytes), mode=mode))
                print(f"  {cap['name']:<18} {mode:<6} cpu {r['cpu']:6.2f} s on {k2:,}", file=sys.stderr)
            results.append({"name": cap["name"], "path": os.path.relpath(cap["path"], ROOT),
                            "meta": cap["meta"], "rows": rows})
    finally:
        shutil.rmtree(dbdir, ignore_errors=True)
    facts["load_after"] = os.getloadavg()
    command = "python bench/varied_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res = {"facts": facts, "results": results, "command": command.strip(), "cpu": cpu}
    text = render(res)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    if a.write_doc:
        write_doc(text)
        print(f"wrote {os.path.relpath(DOC, ROOT)}", file=sys.stderr)
    return 0


def _rate(res: dict, name_prefix: str, mode: str) -> dict | None:
    for c in res["results"]:
        if c["name"].startswith(name_prefix):
            for r in c["rows"]:
                if r["mode"] == mode:
                    return r
    return None


def verdicts(res: dict) -> list[str]:
    out = ["| target (issue 12) | measured | met |", "|---|---|---|"]
    fr = bench.fmt_rate
    varied_caps = [c for c in res["results"] if c["name"].startswith("varied")]
    for c in varied_caps + [c for c in res["results"] if c["name"].startswith("same sites")]:
        by = {r["mode"]: r for r in c["rows"]}
        if "db" in by:
            out.append(f"| {c['name']}: `analyze -q --db NEW` ≥ 1 M packets/s | {fr(by['db']['pps'])}/s | "
                       f"{'yes' if by['db']['pps'] >= TARGET_DB else '**no**'} |")
        if "json" in by:
            out.append(f"| {c['name']}: with `--json /dev/null` ≥ 0.6 M packets/s | {fr(by['json']['pps'])}/s | "
                       f"{'yes' if by['json']['pps'] >= TARGET_JSON else '**no**'} |")
            if "tshark" in by:
                x = by["json"]["pps"] / by["tshark"]["pps"]
                out.append(f"| {c['name']}: with `--json` ≥ 25× tshark | {x:.1f}× | "
                           f"{'yes' if x >= TARGET_JSON_X_TSHARK else '**no**'} |")
    if len(varied_caps) >= 2:
        for mode in ("db", "json", "noinv"):
            rs = [next((r for r in c["rows"] if r["mode"] == mode), None) for c in varied_caps]
            if all(rs):
                lo, hi = min(r["maxrss_mb"] for r in rs), max(r["maxrss_mb"] for r in rs)
                mbs = ", ".join("%.0f" % r["maxrss_mb"] for r in rs)
                out.append(f"| peak RSS the same at {' and '.join(c['name'].split()[1] + ' M' for c in varied_caps)} "
                           f"(`{mode}`, within {RSS_SAME:.0%}) | "
                           f"{mbs} MB | "
                           f"{'yes' if hi <= lo * (1 + RSS_SAME) else '**no**'} |")
    first = varied_caps[0] if varied_caps else None
    for c in res["results"]:
        if first is not None and c["name"].startswith("same sites") and first["meta"].get("groups") == \
                c["meta"].get("groups"):
            # grow's first epoch is the same with or without --reuse-sites: the smaller varied capture is
            # this one's prefix, so its RSS is the "0.4 M" of a plant that goes on
            for mode in ("db", "json", "noinv"):
                a = next((r for r in first["rows"] if r["mode"] == mode), None)
                b = next((r for r in c["rows"] if r["mode"] == mode), None)
                if a and b:
                    lo, hi = sorted((a["maxrss_mb"], b["maxrss_mb"]))
                    out.append(f"| peak RSS the same at {first['name'].split()[1]} M and {c['name'].split()[2]} M, "
                               f"same sites (`{mode}`, within {RSS_SAME:.0%}) | {a['maxrss_mb']:.0f}, "
                               f"{b['maxrss_mb']:.0f} MB | {'yes' if hi <= lo * (1 + RSS_SAME) else '**no**'} |")
    for c in res["results"]:
        if c["name"].startswith("steady"):
            by = {r["mode"]: r for r in c["rows"]}
            if "db" in by:
                out.append(f"| {c['name']}: ≥ 2 M packets/s end to end (`--db NEW`) | {fr(by['db']['pps'])}/s | "
                           f"{'yes' if by['db']['pps'] >= TARGET_STEADY else '**no**'} |")
    return out


def render(res: dict) -> str:
    f = res["facts"]
    out = [f"Command: `{res['command']}`.\n",
           f"Machine: {f['cpu']}, {f['cores']} cores, Linux {f['kernel']}, Python {f['python']}, Cython "
           f"{f['Cython']}, {f['tshark']}, scapy {f['scapy']}, dpkt {f['dpkt']}; children pinned to CPU "
           f"{res['cpu']}; load average before/after "
           f"{' '.join('%.1f' % x for x in f.get('load', ()))} / "
           f"{' '.join('%.1f' % x for x in f.get('load_after', ()))}.\n"]
    out += verdicts(res)
    out.append("")
    for c in res["results"]:
        m = c["meta"]
        mix = ", ".join(f"{k} {v * 100:.0f} %" for k, v in m.get("mix", {}).items())
        extra = (f"; {m['sites']} sites, {m['groups'] * 2} at a time"
                 f"{' (the same ones every epoch, new connections)' if m.get('reuse_sites') else ''}, "
                 f"grown from {m['base_packets']:,} real packets" if "sites" in m else "")
        out.append(f"**{c['name']}** (`{c['path']}`): {m['packets']:,} packets, {m['bytes'] / 1e6:,.0f} MB; "
                   f"{mix}{extra}.\n")
        out.append("| tool | packets timed | CPU s | wall s | packets/s | × tshark | peak RSS MB | peak private MB | "
                   "full file |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        ts = next((r for r in c["rows"] if r["mode"] == "tshark"), None)
        for r in c["rows"]:
            full = f"{r['full_cpu']:.1f} s" + (" (extrapolated)" if r["extrapolated"] else "")
            x = f"{r['pps'] / ts['pps']:.1f}" if ts else ""
            spread = (f" ({min(r['spread']):.2f}–{max(r['spread']):.2f})" if len(r.get("spread", [])) > 1 else "")
            out.append(f"| {r['tool']} | {r['packets']:,} | {r['cpu']:.2f}{spread} | {r['wall']:.2f} | "
                       f"{bench.fmt_rate(r['pps'])} | {x} | {r['maxrss_mb']:.0f} | {r['anon_mb']:.0f} | {full} |")
        out.append("")
    out.append("CPU s of otwatch rows: best of the interleaved rounds (range in brackets).  dpkt and scapy "
               "run on the first varied capture only (their per-packet cost does not depend on its size).  "
               "\"same sites\" is the same base grown with `--reuse-sites`: the 8 sites of the first epoch "
               "go on in the later ones (new connections), a plant that keeps running.")
    return "\n".join(out)


def write_doc(generated: str) -> None:
    block = f"{BEGIN}\n\n{generated}\n{END}"
    with open(DOC) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n## Varied real-stack traffic (issue 12)\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
