#!/usr/bin/env python3
"""Long-running fuzzer over every entry point that takes attacker bytes.

    python bench/fuzz.py --target all --minutes 60 --seed 1 \\
        --corpus bench/out/fuzz/corpus --findings bench/out/fuzz/findings

Targets (bench/fuzz_targets.py): ``engine`` (whole pcap/pcapng files through
the engine, both implementations, chunked and whole, then the pipeline's
decoding and JSON), ``modbus`` ``mqtt`` ``opcua`` (the protocol kernels on
stream scripts split at random points, compiled == pure, then ``decode`` of
every record), ``decoders`` (``decode(key, raw, ctx, side)`` directly),
``hostnames``, ``tls``, ``certs``.  ``all`` runs each in turn (``--jobs 2``:
two at a time), splitting ``--minutes`` between them.

Fuzzing engines (``--engine``):

* ``atheris`` (default when installed): libFuzzer, coverage-guided by
  atheris' bytecode instrumentation of every ``otwatch`` module imported in the
  child (the pure-Python kernels and engine, the decoders).  Mutations are
  libFuzzer's, mixed 50/50 with the structure-aware ones of fuzz_mutate.py.
* ``random``: the same structure-aware mutations, no coverage feedback
  (a blind loop over the seeds and a growing pool of mutants).  Needs nothing
  beyond the test dependencies; the smoke test uses it.

Each target runs in a child process that enforces the oracles; a finding is
minimised (delta debugging, at most ``--minimise-seconds``) and saved as
``<findings>/<target>-<signature>.bin`` (the input) and ``.txt`` (what
happened, the traceback, the state of ext/ in git).  A child that dies
(a hard hang caught by faulthandler, a crash, the kernel's OOM killer) leaves
its current input in ``<findings>/<target>.current``, which the parent saves
as a finding.  ``<findings>/summary.json`` has per-target executions, time,
corpus size, coverage and findings.  ``--replay FILE --target T`` re-runs one
input and prints the outcome.
"""
from __future__ import annotations

import argparse
import faulthandler
import hashlib
import json
import mmap
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

ALL = ("engine", "modbus", "mqtt", "opcua", "decoders", "hostnames", "tls", "certs")
WEIGHTS = {"engine": 3, "modbus": 2, "mqtt": 2, "opcua": 2, "decoders": 2, "hostnames": 1, "tls": 1, "certs": 1}
AS_LIMIT = 3 << 30          # address space of a child: a parser that believes a length of gigabytes fails here
MEM_CHECK_EVERY = 300       # rerun every Nth input under tracemalloc


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
        return True
    except ImportError:
        return False


def ext_state() -> str:
    """git's view of ext/ (another developer may be changing the kernels)."""
    try:
        st = subprocess.run(["git", "-C", ROOT, "status", "--short", "--", "ext"], capture_output=True, text=True,
                            timeout=10).stdout.strip()
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        diff = subprocess.run(["git", "-C", ROOT, "diff", "--stat", "--", "ext"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        return "HEAD %s\n%s\n%s" % (head, st or "(ext/ clean)", diff)
    except Exception as exc:  # pragma: no cover
        return "git unavailable: %s" % exc


# ---------------------------------------------------------------------------
# running one input
# ---------------------------------------------------------------------------
def _project_dirs() -> tuple[str, ...]:
    """Folders whose files are project code: parsers/, ext/, sensor/ of this checkout and of the installed
    ``otwatch`` packages, by absolute path.  Not a substring of the path: a checkout in a folder named
    ``otwatch`` (or a test file under it) is not project code because of its folder's name."""
    dirs = {os.path.join(ROOT, d) for d in ("parsers", "ext", "sensor")}
    for mod in ("otwatch.parsers", "otwatch.ext", "otwatch.sensor"):
        m = sys.modules.get(mod)
        for p in getattr(m, "__path__", ()) if m is not None else ():
            dirs.add(p)
    return tuple(os.path.realpath(d) + os.sep for d in dirs)


def _innermost(tb) -> str:
    """file:function of the innermost frame in project code or a fuzz target (for signatures)."""
    where = "?"
    dirs = _project_dirs()
    for fs in traceback.extract_tb(tb):
        f = os.path.realpath(fs.filename)
        if f.startswith(dirs) or os.path.basename(f) == "fuzz_targets.py":
            where = "%s:%s" % (os.path.basename(f), fs.name)
    return where


def outcome(target, data: bytes, timeout: float | None = None):
    """Run one input; None if every oracle holds, else (kind, detail, signature, traceback text)."""
    from fuzz_targets import Finding

    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        target.run(data)
        return None
    except Finding as f:
        cause = f.__cause__
        where = _innermost(cause.__traceback__) if cause is not None else ""
        tb = "".join(traceback.format_exception(cause)) if cause is not None else "".join(traceback.format_exception(f))
        sig = "%s:%s:%s" % (target.name, f.kind, f.sig) if f.sig else _signature(target.name, f.kind, where, f.detail)
        return f.kind, f.detail, sig, tb
    except _Timeout:
        return "hang", "no result after %.1f s" % timeout, "%s:hang" % target.name, traceback.format_exc()
    except MemoryError:
        return ("memory", "MemoryError (address space limited to %d MiB)" % (AS_LIMIT >> 20),
                "%s:memory:%s" % (target.name, _innermost(sys.exc_info()[2])), traceback.format_exc())
    except RecursionError:
        return ("recursion", "RecursionError", "%s:recursion:%s" % (target.name, _innermost(sys.exc_info()[2])),
                traceback.format_exc())
    except Exception as exc:
        return ("uncaught", "%s: %s" % (type(exc).__name__, exc),
                "%s:uncaught:%s:%s" % (target.name, type(exc).__name__, _innermost(exc.__traceback__)),
                traceback.format_exc())
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _signature(target: str, kind: str, where: str, detail: str) -> str:
    if where:
        return "%s:%s:%s" % (target, kind, where)
    # no exception: use the shape of the detail (digits and quoted values removed)
    shape = re.sub(r"b?'[^']*'|\"[^\"]*\"|\d+", "#", detail)[:90]
    return "%s:%s:%s" % (target, kind, shape)


def memory_outcome(target, data: bytes):
    """Rerun *data* under tracemalloc; a finding if the peak exceeds the target's bound."""
    import tracemalloc

    bound = target.mem_base + target.mem_per_byte * len(data)
    tracemalloc.start()
    try:
        try:
            target.run(data)
        except Exception:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if peak > bound:
        return ("memory", "tracemalloc peak %d bytes > bound %d (%d + %d x %d input bytes)"
                % (peak, bound, target.mem_base, target.mem_per_byte, len(data)),
                "%s:memory:peak" % target.name, ""), peak
    return None, peak


# ---------------------------------------------------------------------------
# minimisation
# ---------------------------------------------------------------------------
def minimise(data: bytes, still, deadline: float) -> bytes:
    """Delta debugging on bytes (ddmin), then on whole script segments, then byte simplification."""
    from fuzz_targets import SEP

    # whole segments of a stream script first (keeps the separators intact)
    if SEP in data:
        parts = data.split(SEP)
        i = 1
        while i < len(parts) and time.time() < deadline:
            cand = SEP.join(parts[:i] + parts[i + 1:])
            if still(cand):
                parts = parts[:i] + parts[i + 1:]
            else:
                i += 1
        data = SEP.join(parts)
    n = 2
    while len(data) >= 2 and time.time() < deadline:
        size = -(-len(data) // n)
        removed = False
        for start in range(0, len(data), size):
            cand = data[:start] + data[start + size:]
            if still(cand):
                data = cand
                n = max(n - 1, 2)
                removed = True
                break
            if time.time() >= deadline:
                break
        if not removed:
            if n >= len(data):
                break
            n = min(len(data), n * 2)
    if len(data) <= 1024:
        b = bytearray(data)
        for i in range(len(b)):
            if time.time() >= deadline:
                break
            if b[i] != 0:
                old = b[i]
                b[i] = 0
                if not still(bytes(b)):
                    b[i] = old
        data = bytes(b)
    return data


# ---------------------------------------------------------------------------
# one target, in this process
# ---------------------------------------------------------------------------
class Run:
    """State of fuzzing one target: counters, findings, corpus paths."""

    def __init__(self, target, findings_dir: str | None, corpus_dir: str | None, minimise_seconds: float,
                 stats_path: str | None = None, current_path: str | None = None, quiet: bool = False):
        self.target = target
        self.findings_dir = findings_dir
        self.corpus_dir = corpus_dir
        self.minimise_seconds = minimise_seconds
        self.stats_path = stats_path
        self.quiet = quiet
        self.execs = 0
        self.minimise_execs = 0
        self.mem_checks = 0
        self.max_peak = 0
        self.max_peak_ratio = 0.0
        self.findings: dict[str, dict] = {}
        self.t0 = time.time()
        self.cpu0 = time.process_time()
        self.last_stats = 0.0
        self.engine = "?"
        self.corpus_size = 0
        self.current = None
        self.hard_timeout = 0.0
        if current_path:
            size = target.max_len + 8
            with open(current_path, "wb") as fh:
                fh.write(b"\0" * size)
            self._cur_fh = open(current_path, "r+b")
            self.current = mmap.mmap(self._cur_fh.fileno(), size)

    def note_current(self, data: bytes):
        if self.current is not None:
            n = min(len(data), self.target.max_len)
            self.current[0:8] = n.to_bytes(8, "little")
            self.current[8:8 + n] = data[:n]

    def one(self, data: bytes):
        self.execs += 1
        self.note_current(data)
        if self.hard_timeout:
            faulthandler.dump_traceback_later(self.hard_timeout, exit=True)
        res = outcome(self.target, data, self.target.timeout)
        if res is None and self.execs % MEM_CHECK_EVERY == 0:
            self.mem_checks += 1
            res, peak = memory_outcome(self.target, data)
            self.max_peak = max(self.max_peak, peak)
            bound = self.target.mem_base + self.target.mem_per_byte * len(data)
            self.max_peak_ratio = max(self.max_peak_ratio, peak / bound)
        if res is not None:
            self.record(data, res)
        now = time.time()
        if self.stats_path and now - self.last_stats > 2.0:
            self.write_stats()
            self.last_stats = now
        return res

    def record(self, data: bytes, res):
        kind, detail, sig, tb = res
        f = self.findings.get(sig)
        if f is not None:
            f["count"] += 1
            return
        if not self.quiet:
            print("[fuzz %s] FINDING %s: %s" % (self.target.name, sig, detail[:300]), file=sys.stderr, flush=True)
        deadline = time.time() + self.minimise_seconds

        def still(cand: bytes) -> bool:
            self.minimise_execs += 1
            if self.hard_timeout:
                faulthandler.dump_traceback_later(self.hard_timeout, exit=True)
            if kind == "memory" and sig.endswith(":peak"):
                r, _peak = memory_outcome(self.target, cand)
            else:
                r = outcome(self.target, cand, self.target.timeout)
            return r is not None and r[2] == sig

        small = minimise(data, still, deadline) if self.minimise_seconds > 0 else data
        final = outcome(self.target, small, self.target.timeout) if kind != "memory" else res
        if final is not None and final[2] == sig:
            kind, detail, sig, tb = final
        digest = hashlib.sha1(sig.encode()).hexdigest()[:10]
        entry = {"signature": sig, "kind": kind, "detail": detail, "count": 1, "size": len(data),
                 "minimised_size": len(small), "first_exec": self.execs,
                 "first_seconds": round(time.time() - self.t0, 1), "file": None}
        if self.findings_dir:
            os.makedirs(self.findings_dir, exist_ok=True)
            base = os.path.join(self.findings_dir, "%s-%s" % (self.target.name, digest))
            with open(base + ".bin", "wb") as fh:
                fh.write(small)
            with open(base + ".orig.bin", "wb") as fh:
                fh.write(data)
            with open(base + ".txt", "w", encoding="utf-8") as fh:
                fh.write("target: %s\nsignature: %s\nkind: %s\ndetail: %s\n" % (self.target.name, sig, kind, detail))
                fh.write("input: %d bytes, minimised to %d (%s)\n" % (len(data), len(small), base + ".bin"))
                fh.write("repr: %r\n" % small[:2000])
                fh.write("\ntraceback:\n%s\n" % tb)
                fh.write("\next/ state:\n%s\n" % ext_state())
                fh.write("\nreplay: python bench/fuzz.py --target %s --replay %s.bin\n" % (self.target.name, base))
            entry["file"] = base + ".bin"
        self.findings[sig] = entry

    def stats(self) -> dict:
        wall = time.time() - self.t0
        return {
            "target": self.target.name, "engine": self.engine, "execs": self.execs,
            "wall_seconds": round(wall, 1), "cpu_seconds": round(time.process_time() - self.cpu0, 1),
            "execs_per_second": round(self.execs / wall, 1) if wall > 0 else 0.0,
            "minimise_execs": self.minimise_execs, "memory_checks": self.mem_checks,
            "max_tracemalloc_peak": self.max_peak, "max_peak_vs_bound": round(self.max_peak_ratio, 3),
            "corpus_size": self.corpus_size, "findings": list(self.findings.values()),
        }

    def write_stats(self):
        if self.stats_path:
            tmp = self.stats_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(self.stats(), fh, indent=1)
            os.replace(tmp, self.stats_path)


def _load_dir(d: str | None, max_len: int) -> list[bytes]:
    out = []
    if d and os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    out.append(fh.read(max_len))
    return out


def random_loop(run: Run, seconds: float, seed: int, max_execs: int | None = None, seeds=None):
    """Blind structure-aware mutation of the seeds and of a pool of kept mutants."""
    from fuzz_mutate import mutate

    t = run.target
    run.engine = "random"
    rng = random.Random(seed)
    base = list(seeds if seeds is not None else t.seeds()) + _load_dir(run.corpus_dir, t.max_len)
    base = [b for b in base if b] or [b"\0"]
    pool: list[bytes] = []
    deadline = time.time() + seconds
    for s in base:                       # every seed once, unmutated
        if time.time() >= deadline or (max_execs is not None and run.execs >= max_execs):
            break
        run.one(s)
    while time.time() < deadline and (max_execs is None or run.execs < max_execs):
        parent = rng.choice(pool) if pool and rng.random() < 0.3 else rng.choice(base)
        child = mutate(parent, rng, t.mutator, base, t.max_len)
        res = run.one(child)
        if res is None and rng.random() < 0.02:
            if len(pool) < 2000:
                pool.append(child)
            else:
                pool[rng.randrange(len(pool))] = child
    run.corpus_size = len(base) + len(pool)
    if run.corpus_dir and pool:
        os.makedirs(run.corpus_dir, exist_ok=True)
        for child in rng.sample(pool, min(len(pool), 200)):
            with open(os.path.join(run.corpus_dir, hashlib.sha1(child).hexdigest()), "wb") as fh:
                fh.write(child)
    run.write_stats()
    return run


def atheris_loop(run: Run, seconds: float, seed: int, seeds_dir: str, extra_args=()):
    """libFuzzer via atheris; otwatch modules imported in this process are instrumented."""
    import atheris

    from fuzz_mutate import mutate

    t = run.target
    run.engine = "atheris"
    seeds = [s for s in t.seeds() if s]
    rng = random.Random(seed)
    deadline = time.time() + seconds

    def test_one(data: bytes):
        if time.time() > deadline:
            run.corpus_size = len(os.listdir(run.corpus_dir)) if run.corpus_dir else 0
            run.write_stats()
            sys.stderr.flush()
            os._exit(0)
        run.one(bytes(data))

    def custom_mutator(data: bytes, max_size: int, mseed: int) -> bytes:
        if rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        r = random.Random(mseed)
        return mutate(bytes(data), r, t.mutator, seeds, min(max_size, t.max_len))

    os.makedirs(run.corpus_dir, exist_ok=True)
    args = [sys.argv[0], run.corpus_dir, seeds_dir, "-max_total_time=%d" % int(seconds + 60), "-timeout=0",
            "-rss_limit_mb=0", "-max_len=%d" % t.max_len, "-seed=%d" % (seed or 1), "-print_final_stats=1",
            "-reload=0", "-len_control=50",
            # libFuzzer's own artifacts (slow-unit-*, crash-*) go with the findings, not into the cwd
            "-artifact_prefix=%s" % os.path.join(run.findings_dir or ".", t.name + "-libfuzzer-")] + list(extra_args)
    atheris.Setup(args, test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


def child_main(a):
    """Run one target in this (child) process."""
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    signal.signal(signal.SIGALRM, _on_alarm)
    engine = a.engine
    if engine == "atheris":
        import atheris
        with atheris.instrument_imports(include=["otwatch"]):
            import otwatch.ext.engine  # noqa: F401  (the pure path: instrumented)
            import otwatch.ext.modbus  # noqa: F401
            import otwatch.ext.mqtt  # noqa: F401
            import otwatch.ext.opcua  # noqa: F401
            import otwatch.parsers.hostnames  # noqa: F401
            import otwatch.parsers.modbus.decode  # noqa: F401
            import otwatch.parsers.mqtt.decode  # noqa: F401
            import otwatch.parsers.opcua.certs  # noqa: F401
            import otwatch.parsers.opcua.decode  # noqa: F401
            import otwatch.parsers.tls  # noqa: F401
            import otwatch.sensor.jsonout  # noqa: F401
            import otwatch.sensor.pipeline  # noqa: F401
    import fuzz_targets

    t = fuzz_targets.TARGETS[a.child]
    corpus = os.path.join(a.corpus, t.name) if a.corpus else None
    run = Run(t, a.findings, corpus, a.minimise_seconds, stats_path=a.stats, current_path=a.current)
    # a hang inside compiled code never returns to the interpreter, so SIGALRM cannot
    # stop it: faulthandler's watchdog thread (re-armed for every input) dumps the
    # stacks and exits; the parent then saves the current input as a finding
    run.hard_timeout = max(60.0, t.timeout * 6)
    if engine == "atheris":
        seeds_dir = os.path.join(a.corpus, t.name + "-seeds")
        os.makedirs(seeds_dir, exist_ok=True)
        for s in t.seeds():
            with open(os.path.join(seeds_dir, hashlib.sha1(s).hexdigest()), "wb") as fh:
                fh.write(s)
        atheris_loop(run, a.seconds, a.seed, seeds_dir)
    else:
        random_loop(run, a.seconds, a.seed)
    run.write_stats()


# ---------------------------------------------------------------------------
# the parent: children per target, time budget, summary
# ---------------------------------------------------------------------------
def _libfuzzer_numbers(log_path: str) -> dict:
    out = {}
    try:
        with open(log_path, errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return out
    for line in reversed(lines):
        m = re.match(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", line)
        if m:
            out.update(libfuzzer_execs=int(m.group(1)), coverage_edges=int(m.group(2)), features=int(m.group(3)),
                       libfuzzer_corpus=int(m.group(4)), libfuzzer_corpus_bytes=m.group(5))
            break
    for line in lines:
        m = re.match(r"INFO: Loaded \d+ modules\s+\((\d+) inline 8-bit counters\)", line)
        if m:
            out["instrumented_edges"] = int(m.group(1))
        m = re.match(r"#\d+\s+INITED cov: (\d+) ft: (\d+)", line)
        if m:
            out["coverage_after_seeds"] = int(m.group(1))
    return out


def parent_main(a):
    names = ALL if a.target == "all" else tuple(a.target.split(","))
    for n in names:
        if n not in ALL:
            sys.exit("unknown target %r (one of %s, or all)" % (n, ", ".join(ALL)))
    engine = a.engine
    if engine == "auto":
        engine = "atheris" if have_atheris() else "random"
    os.makedirs(a.findings, exist_ok=True)
    os.makedirs(a.corpus, exist_ok=True)
    total = a.minutes * 60.0
    wsum = sum(WEIGHTS[n] for n in names)
    budget = {n: total * WEIGHTS[n] / wsum * a.jobs for n in names} if len(names) > 1 else {names[0]: total}
    summary = {"command": " ".join([sys.executable] + sys.argv), "engine": engine, "seed": a.seed,
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "targets": {}}
    summary_path = os.path.join(a.findings, "summary.json")
    pending = list(names)
    running: dict[str, tuple] = {}
    while pending or running:
        while pending and len(running) < a.jobs:
            n = pending.pop(0)
            stats = os.path.join(a.findings, "%s.stats.json" % n)
            cur = os.path.join(a.findings, "%s.current" % n)
            log = os.path.join(a.findings, "%s.log" % n)
            for p in (stats,):
                if os.path.exists(p):
                    os.remove(p)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", n, "--seconds", str(budget[n]),
                   "--seed", str(a.seed), "--corpus", a.corpus, "--findings", a.findings, "--engine", engine,
                   "--stats", stats, "--current", cur, "--minimise-seconds", str(a.minimise_seconds)]
            print("[fuzz] %s: %.0f s with %s" % (n, budget[n], engine), flush=True)
            fh = open(log, "w")
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            running[n] = (proc, time.time(), stats, cur, log, fh, ru0)
        time.sleep(1.0)
        for n, (proc, t0, stats, cur, log, fh, ru0) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                if time.time() - t0 > budget[n] + 600:       # a child that stopped keeping time
                    proc.kill()
                    rc = proc.wait()
                else:
                    continue
            fh.close()
            del running[n]
            try:
                with open(stats) as sf:
                    st = json.load(sf)
            except (OSError, ValueError):
                st = {"target": n, "execs": 0, "findings": []}
            st["returncode"] = rc
            st["wall_seconds_total"] = round(time.time() - t0, 1)
            st.update(_libfuzzer_numbers(log))
            if rc != 0:
                # the child died: its current input is the reproducer
                try:
                    with open(cur, "rb") as cf:
                        raw = cf.read()
                    k = int.from_bytes(raw[:8], "little")
                    data = raw[8:8 + k]
                except OSError:
                    data = b""
                digest = hashlib.sha1(data).hexdigest()[:10]
                base = os.path.join(a.findings, "%s-died-%s" % (n, digest))
                with open(base + ".bin", "wb") as out:
                    out.write(data)
                tail = open(log, errors="replace").read()[-4000:]
                with open(base + ".txt", "w") as out:
                    out.write("target: %s\nchild exited with %s while running this input (%d bytes)\n\n%s\n\n%s\n"
                              % (n, rc, len(data), tail, ext_state()))
                st.setdefault("findings", []).append({"signature": "%s:died:%s" % (n, rc), "kind": "died",
                                                      "detail": "exit status %s" % rc, "file": base + ".bin",
                                                      "count": 1})
                print("[fuzz] %s: child died (%s); input saved to %s.bin" % (n, rc, base), flush=True)
            summary["targets"][n] = st
            print("[fuzz] %s: %d execs in %.0f s (%.0f/s), %d finding(s)%s" % (
                n, st.get("execs", 0), st.get("wall_seconds", 0), st.get("execs_per_second", 0),
                len(st.get("findings", [])),
                ", cov %s" % st["coverage_edges"] if "coverage_edges" in st else ""), flush=True)
            with open(summary_path, "w") as sf:
                json.dump(summary, sf, indent=1)
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary["children_cpu_seconds"] = round(ru.ru_utime + ru.ru_stime, 1)
    with open(summary_path, "w") as sf:
        json.dump(summary, sf, indent=1)
    nfind = sum(len(t.get("findings", [])) for t in summary["targets"].values())
    print("[fuzz] done: %d finding(s); summary in %s" % (nfind, summary_path), flush=True)
    return 1 if nfind else 0


def replay_main(a):
    import fuzz_targets

    signal.signal(signal.SIGALRM, _on_alarm)
    t = fuzz_targets.TARGETS[a.target]
    with open(a.replay, "rb") as fh:
        data = fh.read()
    res = outcome(t, data, t.timeout)
    if res is None:
        mem, peak = memory_outcome(t, data)
        print("ok (tracemalloc peak %d bytes)" % peak if mem is None else "%s: %s" % (mem[0], mem[1]))
        return 0 if mem is None else 1
    print("%s: %s\nsignature %s\n%s" % (res[0], res[1], res[2], res[3]))
    return 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="all", help="all, or a comma list of: " + ", ".join(ALL))
    p.add_argument("--minutes", type=float, default=10.0, help="total wall time (split between targets)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--corpus", default=os.path.join(ROOT, "bench", "out", "fuzz", "corpus"))
    p.add_argument("--findings", default=os.path.join(ROOT, "bench", "out", "fuzz", "findings"))
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--jobs", type=int, default=1, help="targets run at the same time")
    p.add_argument("--minimise-seconds", type=float, default=120.0)
    p.add_argument("--replay", help="run one input file against --target and print the outcome")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    p.add_argument("--stats", help=argparse.SUPPRESS)
    p.add_argument("--current", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.replay:
        return replay_main(a)
    if a.child:
        child_main(a)
        return 0
    return parent_main(a)


if __name__ == "__main__":
    sys.exit(main())
