#!/usr/bin/env python3
"""Time otwatch against tshark, scapy and dpkt on one large mixed OT/IT capture.

    python bench/run.py                          # 1.6 M packets, print the tables
    python bench/run.py --write-doc              # ... and update docs/performance.md
    python bench/run.py --packets 400000 --sizes 100000,400000 --repeat 1   # quicker

Builds the capture with bench/make_capture.py (cached in bench/out/, rebuilt
when the generator changes), then runs every contender in its own subprocess on
the same file, one after the other, pinned to one CPU:

  otwatch compiled  otwatch analyze -q --db FRESH.db, OTWATCH_REQUIRE_EXTENSIONS=1: end to end as
                    the issue defines it (decode, flows, reassembly, observations, inventory
                    updates into a new SQLite database); also with --no-inventory
  otwatch pure      the same two with OTWATCH_NO_EXTENSIONS=1 (on a prefix, see --pure-packets; best of
                    --repeat runs like the compiled rows)
  tshark            -T fields with the equivalent L3/L4 + Modbus + MQTT + OPC UA fields (prefix)
  scapy             PcapReader with scapy.contrib.modbus/mqtt, reading the same fields (prefix)
  dpkt              pcap.Reader + Ethernet + IP + TCP, counting ports

Slow contenders run on the first N packets of the same capture (a byte-exact
prefix); their rate is measured there and the full-file time extrapolated,
marked as such.  Per run: wall time, CPU time (user + sys, from wait4), peak
RSS (wait4 ru_maxrss) and peak private memory (RssAnon, sampled from
/proc/PID/status every 10 ms).  Rates are packets or bytes over CPU time: on
an idle machine that equals wall time for these single-threaded tools, and it
stays meaningful when the machine is shared (wall time is printed too).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
DOC = os.path.join(ROOT, "docs", "performance.md")
sys.path.insert(0, HERE)

import make_capture  # noqa: E402

TSHARK_FIELDS = ["frame.number", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "mbtcp.trans_id",
                 "modbus.func_code", "modbus.reference_num", "mqtt.msgtype", "mqtt.topic",
                 "opcua.servicenodeid.numeric"]

BEGIN = "<!-- bench/run.py: generated from here -->"
END = "<!-- bench/run.py: generated up to here -->"


# ---------------------------------------------------------------------------
# captures
# ---------------------------------------------------------------------------
def _generator_digest() -> str:
    with open(make_capture.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def capture(packets: int, seed: int = 1) -> tuple[str, dict]:
    """bench/out/mixed-<N>.pcap, built (or reused when the generator is unchanged)."""
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"mixed-{packets}.pcap")
    meta_path = path[:-5] + ".json"
    digest = _generator_digest()
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("generator") == digest and meta.get("seed") == seed and \
                os.path.getsize(path) == meta.get("bytes"):
            return path, meta
    print(f"building {os.path.relpath(path, ROOT)} ({packets:,} packets) ...", file=sys.stderr)
    meta = make_capture.build(path, packets, seed)
    meta["generator"] = digest
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return path, meta


def prefix(path: str, packets: int) -> tuple[str, int, int]:
    """The first *packets* records of a pcap, as a file next to it; returns (path, packets, bytes)."""
    out = f"{path[:-5]}.first{packets}.pcap"
    with open(path, "rb") as f:
        data = f.read(24)
        pos, n = 24, 0
        chunks = [data]
        while n < packets:
            hdr = f.read(16)
            if len(hdr) < 16:
                break
            cap = struct.unpack("<I", hdr[8:12])[0]
            chunks.append(hdr + f.read(cap))
            n += 1
    blob = b"".join(chunks)
    if not (os.path.exists(out) and os.path.getsize(out) == len(blob)):
        with open(out, "wb") as f:
            f.write(blob)
    return out, n, len(blob)


def warm(path: str) -> None:
    """Read the file once so that every contender starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# ---------------------------------------------------------------------------
# measuring one child
# ---------------------------------------------------------------------------
def measure(cmd: list[str], env: dict | None = None, cpu: int | None = None, stdout=subprocess.DEVNULL) -> dict:
    """Run *cmd* to completion; wall, CPU (user + sys), peak RSS and peak private memory of the tool.

    The tool runs under GNU time (``/usr/bin/time -f``): Linux keeps the
    pre-exec high-water mark in ru_maxrss, so a child forked straight from this
    (large) process would report our RSS, not the tool's; forked from time it
    reports its own.  Private memory (RssAnon) is sampled every 10 ms.
    """
    def pin():
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    timed = shutil.which("time") or "/usr/bin/time"
    use_time = os.path.exists(timed)
    fd, tfile = tempfile.mkstemp(prefix="otwatch-bench-", suffix=".time")
    os.close(fd)
    full = [timed, "-f", "%M %U %S", "-o", tfile] + cmd if use_time else cmd
    peak_anon = [0]
    t0 = time.perf_counter()
    p = subprocess.Popen(full, env=env, stdout=stdout, stderr=subprocess.PIPE, preexec_fn=pin, cwd=ROOT)
    done = threading.Event()

    def target() -> int:
        if not use_time:
            return p.pid
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            return int(kids[0]) if kids else 0
        except (OSError, ValueError):
            return 0

    def sample():
        pid = 0
        while not done.is_set():
            if not pid:
                pid = target()
            if pid:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("RssAnon:"):
                                kb = int(line.split()[1])
                                if kb > peak_anon[0]:
                                    peak_anon[0] = kb
                                break
                except (OSError, ValueError):
                    pass
            done.wait(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout_data = None
    if stdout is subprocess.PIPE:
        stdout_data = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    rc = os.waitstatus_to_exitcode(status)
    try:
        with open(tfile) as f:
            lines = f.read().split("\n")
    finally:
        os.unlink(tfile)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}: {err.decode(errors='replace')[-2000:]}")
    if use_time:
        last = [x for x in lines if x.strip()][-1].split()
        maxrss, cpu_s = int(last[0]), float(last[1]) + float(last[2])
    else:
        maxrss, cpu_s = ru.ru_maxrss, ru.ru_utime + ru.ru_stime
    return {"wall": wall, "cpu": cpu_s, "maxrss_kb": maxrss, "anon_kb": peak_anon[0], "stdout": stdout_data}


def best(runs: list[dict]) -> dict:
    r = dict(min(runs, key=lambda x: x["cpu"]))
    r["runs"] = len(runs)
    r["maxrss_kb"] = max(x["maxrss_kb"] for x in runs)
    r["anon_kb"] = max(x["anon_kb"] for x in runs)
    return r


def env_with(**kv) -> dict:
    e = dict(os.environ)
    for k in ("OTWATCH_NO_EXTENSIONS", "OTWATCH_REQUIRE_EXTENSIONS"):
        e.pop(k, None)
    e.update(kv)
    return e


_DB_DIR = tempfile.mkdtemp(prefix="otwatch-bench-db-")


def otwatch_cmd(path: str, inventory: bool = True) -> list[str]:
    """`otwatch analyze -q`: with the inventory, into a database that does not exist yet."""
    if not inventory:
        return [sys.executable, "-m", "otwatch.sensor", "analyze", "--no-inventory", "-q", path]
    fd, db = tempfile.mkstemp(prefix="inv-", suffix=".db", dir=_DB_DIR)
    os.close(fd)
    os.unlink(db)      # a fresh database each run; the directory is removed at exit
    return [sys.executable, "-m", "otwatch.sensor", "analyze", "-q", "--db", db, path]


def tshark_cmd(path: str) -> list[str]:
    cmd = ["tshark", "-n", "-r", path, "-T", "fields"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    return cmd


# ---------------------------------------------------------------------------
# machine facts
# ---------------------------------------------------------------------------
def machine() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
             "machine": platform.machine(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            facts["mem_gb"] = round(int(f.readline().split()[1]) / 1e6, 1)
    except (OSError, ValueError, IndexError):
        pass
    for tool, args in (("tshark", ["tshark", "-v"]),):
        try:
            facts[tool] = subprocess.run(args, capture_output=True, text=True).stdout.splitlines()[0].rstrip(".")
        except (OSError, IndexError):
            facts[tool] = "not installed"
    for mod in ("scapy", "dpkt", "Cython"):
        try:
            facts[mod] = __import__(mod).__version__
        except Exception:
            facts[mod] = "not installed"
    try:
        facts["load"] = os.getloadavg()
    except OSError:
        pass
    return facts


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def row(name: str, r: dict, packets: int, nbytes: int, full_packets: int, full_bytes: int, note: str = "") -> dict:
    pps = packets / r["cpu"]
    return {"tool": name, "packets": packets, "bytes": nbytes, "wall": r["wall"], "cpu": r["cpu"],
            "pps": pps, "mbps": nbytes / r["cpu"] / 1e6, "maxrss_mb": r["maxrss_kb"] / 1024,
            "anon_mb": r["anon_kb"] / 1024, "extrapolated": packets < full_packets,
            "full_cpu": r["cpu"] * full_packets / packets, "note": note, "runs": r.get("runs", 1)}


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def table(rows: list[dict]) -> str:
    ref = rows[0]["pps"]
    lines = ["| tool | packets timed | CPU s | wall s | packets/s | MB/s | × compiled | peak RSS MB | peak private MB | full file |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        full = f"{r['full_cpu']:.1f} s" + (" (extrapolated)" if r["extrapolated"] else "")
        ratio = ref / r["pps"]
        rat = "1" if r is rows[0] else (f"{ratio:.1f}× slower" if ratio >= 1 else f"{1 / ratio:.1f}× faster")
        lines.append(f"| {r['tool']}{(' — ' + r['note']) if r['note'] else ''} | {r['packets']:,} | {r['cpu']:.2f} | "
                     f"{r['wall']:.2f} | {fmt_rate(r['pps'])} | {r['mbps']:.1f} | {rat} | {r['maxrss_mb']:.0f} | "
                     f"{r['anon_mb']:.0f} | {full} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_600_000, help="packets in the main capture")
    ap.add_argument("--sizes", default="400000,1600000",
                    help="capture sizes for the memory-vs-size check (compiled otwatch)")
    ap.add_argument("--pure-packets", type=int, default=400_000, help="prefix for the pure path (0: full file)")
    ap.add_argument("--tshark-packets", type=int, default=200_000, help="prefix for tshark (0: full file)")
    ap.add_argument("--scapy-packets", type=int, default=20_000, help="prefix for scapy (0: full file)")
    ap.add_argument("--dpkt-packets", type=int, default=0, help="prefix for dpkt (0: full file)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="runs of each otwatch row, compiled and pure (best CPU time counts)")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin children to (default: the last one)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--skip", default="", help="comma-separated: pure,tshark,scapy,dpkt,memory,stages")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-doc", action="store_true", help="write the results into docs/performance.md")
    ap.add_argument("--json", metavar="PATH", help="also write raw results as JSON")
    a = ap.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    cpu = None if a.no_pin else (a.cpu if a.cpu is not None else max(os.sched_getaffinity(0)))

    facts = machine()
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}, load {facts.get('load')}",
          file=sys.stderr)
    path, meta = capture(a.packets, a.seed)
    full_n, full_b = meta["packets"], meta["bytes"]
    warm(path)
    rows: list[dict] = []

    def say(r):
        print(f"  {r['tool']:<18} {r['packets']:>9,} pkts  cpu {r['cpu']:7.2f} s  wall {r['wall']:7.2f} s  "
              f"{fmt_rate(r['pps']):>8}/s  {r['mbps']:7.1f} MB/s  rss {r['maxrss_mb']:6.0f} MB  "
              f"private {r['anon_mb']:6.0f} MB", file=sys.stderr)

    def sub(n: int) -> tuple[str, int, int]:
        if n <= 0 or n >= full_n:
            return path, full_n, full_b
        p, k, b = prefix(path, n)
        warm(p)
        return p, k, b

    # startup: the same command on an empty capture (pcap header only)
    empty = os.path.join(OUT, "empty.pcap")
    with open(empty, "wb") as f:
        f.write(make_capture.PCAP_HEADER)
    startup = best([measure(otwatch_cmd(empty), env_with(OTWATCH_REQUIRE_EXTENSIONS="1"), cpu) for _ in range(3)])
    startup_noinv = best([measure(otwatch_cmd(empty, False), env_with(OTWATCH_REQUIRE_EXTENSIONS="1"), cpu)
                          for _ in range(3)])

    # (a) compiled and (b) pure, end to end (inventory included) and without the inventory.
    # Interleaved: each round runs every variant once, and each row keeps its best round, so a
    # slow minute of a shared machine touches every variant alike (the ratios stay fair).
    variants = [("otwatch compiled", True, env_with(OTWATCH_REQUIRE_EXTENSIONS="1"), (path, full_n, full_b)),
                ("otwatch compiled, --no-inventory", False, env_with(OTWATCH_REQUIRE_EXTENSIONS="1"),
                 (path, full_n, full_b))]
    if "pure" not in skip:
        pure_file = sub(a.pure_packets)
        variants += [("otwatch pure", True, env_with(OTWATCH_NO_EXTENSIONS="1"), pure_file),
                     ("otwatch pure, --no-inventory", False, env_with(OTWATCH_NO_EXTENSIONS="1"), pure_file)]
    runs: dict = {name: [] for name, *_ in variants}
    for _ in range(a.repeat):
        for name, inv, env, (p, _k, _b) in variants:
            runs[name].append(measure(otwatch_cmd(p, inv), env, cpu))
    for name, inv, env, (p, k, b) in variants:
        rows.append(row(name, best(runs[name]), k, b, full_n, full_b))
        rows[-1]["spread"] = (min(x["cpu"] for x in runs[name]), max(x["cpu"] for x in runs[name]))
        say(rows[-1])
    # (c) tshark
    tshark_check = None
    if "tshark" not in skip and shutil.which("tshark"):
        p, k, b = sub(a.tshark_packets)
        r = measure(tshark_cmd(p), None, cpu)
        rows.append(row("tshark -T fields", r, k, b, full_n, full_b))
        say(rows[-1])
        # untimed: does tshark decode what we ask for?  (first 20k packets)
        p2, _, _ = sub(20_000)
        out = subprocess.run(tshark_cmd(p2), capture_output=True, text=True).stdout.splitlines()
        cols = [line.split("\t") for line in out]
        tshark_check = {"lines": len(cols),
                        "modbus": sum(1 for c in cols if len(c) > 6 and c[6]),
                        "mqtt": sum(1 for c in cols if len(c) > 8 and c[8]),
                        "opcua": sum(1 for c in cols if len(c) > 10 and c[10])}
    # (d) scapy
    if "scapy" not in skip:
        p, k, b = sub(a.scapy_packets)
        r = measure([sys.executable, os.path.join(HERE, "baselines.py"), "scapy", p], None, cpu,
                    stdout=subprocess.PIPE)
        rows.append(row("scapy (modbus, mqtt)", r, k, b, full_n, full_b))
        say(rows[-1])
    # (e) dpkt
    if "dpkt" not in skip:
        p, k, b = sub(a.dpkt_packets)
        r = measure([sys.executable, os.path.join(HERE, "baselines.py"), "dpkt", p], None, cpu,
                    stdout=subprocess.PIPE)
        rows.append(row("dpkt loop (L2-L4)", r, k, b, full_n, full_b))
        say(rows[-1])

    # memory vs size (compiled)
    mem = []
    if "memory" not in skip:
        for n in sorted({int(x) for x in a.sizes.split(",") if x}):
            p, m = capture(n, a.seed) if n != a.packets else (path, meta)
            warm(p)
            r = best([measure(otwatch_cmd(p), env_with(OTWATCH_REQUIRE_EXTENSIONS="1"), cpu) for _ in range(2)])
            mem.append({"packets": m["packets"], "mb": m["bytes"] / 1e6, "maxrss_mb": r["maxrss_kb"] / 1024,
                        "anon_mb": r["anon_kb"] / 1024, "cpu": r["cpu"]})
            print(f"  memory: {m['packets']:>9,} packets  rss {mem[-1]['maxrss_mb']:.0f} MB  "
                  f"private {mem[-1]['anon_mb']:.0f} MB", file=sys.stderr)

    # stages (in one process: CPU time per stage)
    stages = {}
    if "stages" not in skip:
        for impl, n, reps in (("compiled", 0, 3), ("pure", min(a.pure_packets or full_n, 100_000), 3)):
            p, k, _ = sub(n)
            r = measure([sys.executable, os.path.join(HERE, "stages.py"), p, "--impl", impl, "--repeat", str(reps)],
                        env_with(OTWATCH_REQUIRE_EXTENSIONS="1") if impl == "compiled" else env_with(),
                        cpu, stdout=subprocess.PIPE)
            stages[impl] = json.loads(r["stdout"])

    facts["load_after"] = os.getloadavg()
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res = {"facts": facts, "capture": meta, "rows": rows, "memory": mem, "stages": stages,
           "startup": {"cpu": startup["cpu"], "wall": startup["wall"], "maxrss_mb": startup["maxrss_kb"] / 1024,
                       "anon_mb": startup["anon_kb"] / 1024, "cpu_noinv": startup_noinv["cpu"]},
           "tshark_check": tshark_check, "command": command.strip(), "pinned_cpu": cpu,
           "capture_path": os.path.relpath(path, ROOT)}
    text = render(res)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    shutil.rmtree(_DB_DIR, ignore_errors=True)
    if a.write_doc:
        write_doc(text)
        print(f"wrote {os.path.relpath(DOC, ROOT)}", file=sys.stderr)
    return 0


def render(res: dict) -> str:
    f = res["facts"]
    m = res["capture"]
    rows = res["rows"]
    out = []
    out.append(f"Command: `{res['command']}` (capture: `{res['capture_path']}`, seed {m['seed']}).\n")
    out.append(f"Machine: {f['cpu']}, {f['cores']} cores ({f.get('mem_gb', '?')} GB), {f['machine']}, "
               f"Linux {f['kernel']}, Python {f['python']}, Cython {f['Cython']}, {f['tshark']}, "
               f"scapy {f['scapy']}, dpkt {f['dpkt']}.  Every contender ran alone, pinned to CPU "
               f"{res['pinned_cpu']}, from the page cache.  Load average before/after: "
               f"{' '.join('%.1f' % x for x in f.get('load', ()))} / "
               f"{' '.join('%.1f' % x for x in f.get('load_after', ()))}.\n")
    mix = ", ".join(f"{k} {v * 100:.0f} %" for k, v in m["mix"].items())
    out.append(f"Capture: {m['packets']:,} packets, {m['bytes'] / 1e6:,.0f} MB, {m['duration']:,.0f} s of packet "
               f"time; packet mix {mix} (generated in {m['seconds']:.0f} s).\n")
    out.append(table(rows) + "\n")
    out.append("Rates are over CPU time (user + sys of the child); wall time is shown beside it. "
               "\"Packets timed\" below the capture size means the tool ran on that prefix of the same file "
               "and its full-file time is extrapolated from its rate there.  Peak RSS includes shared "
               "libraries; peak private is RssAnon, the process's own heap.\n")
    spread = [f"{r['tool']} {r['spread'][0]:.2f}–{r['spread'][1]:.2f} s" for r in rows if r.get("spread")]
    if spread:
        out.append(f"Spread of CPU time over the {rows[0]['runs']} interleaved rounds: " + "; ".join(spread) + ".\n")
    by = {r["tool"]: r for r in rows}
    for suffix, what in (("", "end to end (inventory included)"), (", --no-inventory", "without the inventory")):
        c, p = by.get("otwatch compiled" + suffix), by.get("otwatch pure" + suffix)
        if c and p:
            out.append(f"Pure against compiled, {what}: {c['pps'] / p['pps']:.1f}× slower "
                       f"({fmt_rate(p['pps'])} against {fmt_rate(c['pps'])} packets/s).\n")
    s = res["startup"]
    out.append(f"Start-up of `otwatch analyze` on an empty capture: {s['cpu']:.2f} s CPU, "
               f"{s['maxrss_mb']:.0f} MB RSS ({s['anon_mb']:.0f} MB private), creating the inventory "
               f"database; {s.get('cpu_noinv', 0):.2f} s with --no-inventory.  Included in the rows above.\n")
    if res.get("tshark_check"):
        c = res["tshark_check"]
        out.append(f"tshark decodes all three protocols with its default ports (first 20,000 packets: "
                   f"{c['modbus']:,} lines with a Modbus function code, {c['mqtt']:,} with an MQTT message "
                   f"type, {c['opcua']:,} with an OPC UA service node id).\n")
    if res["memory"]:
        out.append("Memory against capture size (compiled `otwatch analyze`, inventory included):\n")
        out.append("| packets | MB | CPU s | peak RSS MB | peak private MB |\n|---:|---:|---:|---:|---:|")
        for x in res["memory"]:
            out.append(f"| {x['packets']:,} | {x['mb']:,.0f} | {x['cpu']:.2f} | {x['maxrss_mb']:.0f} | "
                       f"{x['anon_mb']:.0f} |")
        out.append("")
    if res["stages"]:
        out.append("Where the time goes (one process, CPU s, best of 3 runs of each stage; each stage includes the "
                   "ones above it, so the difference between two rows is that stage's cost):\n")
        out.append("| stage | compiled | per packet | pure | per packet |\n|---|---:|---:|---:|---:|")
        c = res["stages"].get("compiled", {})
        p = res["stages"].get("pure", {})
        names = (("read", "read into a reused 4 MiB buffer"), ("engine", "+ engine kernel, no protocol kernels"),
                 ("kernels", "+ Modbus/MQTT/OPC UA kernels"), ("pipeline", "+ pipeline → observations"),
                 ("summary", "+ Summary consumer (= analyze -q --no-inventory)"),
                 ("inventory", "+ inventory into a new database (= analyze -q)"))
        for k, label in names:
            cv = c.get(k)
            pv = p.get(k)
            out.append(f"| {label} | {cv:.2f} | {cv / c['packets'] * 1e6:.2f} µs | "
                       f"{pv:.2f} | {pv / p['packets'] * 1e6:.2f} µs |" if cv is not None and pv is not None
                       else f"| {label} | {cv} | | {pv} | |")
        out.append(f"\n(compiled on {c.get('packets', 0):,} packets, pure on {p.get('packets', 0):,}.)\n")
    return "\n".join(out)


def write_doc(generated: str) -> None:
    block = f"{BEGIN}\n\n{generated}\n{END}"
    if os.path.exists(DOC):
        with open(DOC) as f:
            doc = f.read()
        if BEGIN in doc and END in doc:
            doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
        else:
            doc = doc.rstrip() + "\n\n" + block + "\n"
    else:
        doc = "# Performance\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
