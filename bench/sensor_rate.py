#!/usr/bin/env python3
"""The highest packet rate the live sensor sustains without drops (issue 15's benchmark).

    sudo python bench/sensor_rate.py --capture bench/out/mixed-1600k.pcap --rates 100000,300000,500000,0

For each rate: a fresh veth pair in two network namespaces (tests/support/veth.py:
no addresses, IPv6 off), ``otwatch sensor`` on one end pinned to one CPU (the
full pipeline: engine, inventory into a new database, alerts, outbox), the
sender on the other end pinned to the other CPU: bench/blast.c (the file in
memory, ``sendmmsg``, qdisc bypassed; PPS 0 = as fast as it can) or
``tcpreplay -K --pps RATE`` (0 = ``--topspeed``).  When the replay is done and
the sensor has seen no new packet for two seconds, it is stopped with SIGTERM
and its final line read: packets seen and packets the kernel dropped.  A rate is
sustained when every replayed packet reached the sensor (kernel drops 0,
interface drops 0).

Where the receiving side runs (``--receive``): ``napi`` (default) attaches a
no-op XDP program to the sensor's veth (bench/xdp_pass.c) and turns on threaded
NAPI, so the veth's receive work -- the packet socket's copy into the sensor's
ring included -- runs in a kernel thread pinned to the sensor's CPU, as a NIC's
receive interrupt would; ``sender`` leaves the veth as it is, and all of that
work runs in the sender's softirq on the sender's CPU.  CPU seconds are
reported for the sender (blast only), the NAPI thread and the sensor.

The machine has 2 cores: the sender needs one of them, so "one core of this
machine" is the sensor's share.  Prints a Markdown table (and --json).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from support.veth import VethPair  # noqa: E402


def otwatch_bin() -> str:
    cand = os.path.join(os.path.dirname(sys.executable), "otwatch")
    return cand if os.path.exists(cand) else shutil.which("otwatch") or "otwatch"


def count_packets(path: str) -> int:
    out = subprocess.run(["capinfos", "-M", "-c", path], capture_output=True, text=True).stdout
    m = re.search(r"Number of packets:\s+(\d+)", out)
    if m:
        return int(m.group(1))
    import dpkt

    with open(path, "rb") as fh:
        return sum(1 for _ in dpkt.pcap.Reader(fh))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of *pid* so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def tool_bin(name: str) -> str:
    """bench/NAME.c compiled into bench/out (rebuilt when the source is newer)."""
    src, out = os.path.join(HERE, name + ".c"), os.path.join(HERE, "out", name)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", out, src], check=True)
    return out


def napi_thread(v: VethPair, cpu: int) -> int:
    """Give the sensor's veth its own threaded NAPI, pinned to *cpu* at real-time priority; return its pid.

    The thread (``napi/vs-ID``) is made when ``threaded`` is set; it is told apart from other
    namespaces' ``vs`` threads as the one that was not there before."""
    def threads() -> set[int]:
        r = subprocess.run(["pgrep", "-x", f"napi/{v.sensor_if}-[0-9]+"], capture_output=True, text=True)
        return {int(p) for p in r.stdout.split()}

    r = subprocess.run(["ip", "netns", "exec", v.sensor_ns, tool_bin("xdp_pass"), v.sensor_if],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"no NAPI receive on this kernel ({r.stderr.strip()}): try --receive sender")
    before = threads()
    v.ns(v.sensor_ns, "sh", "-c", f"echo 1 > /sys/class/net/{v.sensor_if}/threaded")
    new = threads() - before
    if len(new) != 1:
        raise RuntimeError(f"expected one new NAPI thread for {v.sensor_if}, found {sorted(new)}")
    pid = new.pop()
    subprocess.run(["taskset", "-p", "-c", str(cpu), str(pid)], check=True, capture_output=True)
    # SCHED_FIFO, as a NIC's receive softirq: it preempts the sensor when packets arrive (under the default
    # policy the two share the CPU fairly and the veth's 256-packet ring pushes back on the sender instead)
    subprocess.run(["chrt", "-f", "-p", "50", str(pid)], check=True, capture_output=True)
    return pid


def one_rate(capture: str, rate: int, n: int, sensor_cpu: int, replay_cpu: int, tag: str,
             sender: str = "blast", buffer_mb: int = 64, receive: str = "napi") -> dict:
    work = tempfile.mkdtemp(prefix="otwatch-rate-")
    os.chmod(work, 0o777)
    v = VethPair(tag)
    try:
        napi = napi_thread(v, sensor_cpu) if receive == "napi" else None
        err_path = os.path.join(work, "sensor.err")
        err = open(err_path, "w")
        sensor = v.popen(v.sensor_ns, ["taskset", "-c", str(sensor_cpu), otwatch_bin(), "sensor", "-i", v.sensor_if,
                                       "--db", os.path.join(work, "s.db"), "--user", "nobody",
                                       "--heartbeat", "3600", "--buffer-mb", str(buffer_mb)],
                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while "privileges:" not in open(err_path).read():
            if sensor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(open(err_path).read())
            time.sleep(0.1)
        cpu0 = cpu_seconds(sensor.pid)
        napi0 = cpu_seconds(napi) if napi else 0.0
        t0 = time.monotonic()
        if sender == "tcpreplay":
            speed = ["--topspeed"] if rate == 0 else ["--pps", str(rate)]
            rp = subprocess.run(["ip", "netns", "exec", v.replay_ns, "taskset", "-c", str(replay_cpu), "tcpreplay",
                                 "-K", "-i", v.replay_if, *speed, capture], capture_output=True, text=True)
            m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rp.stdout)
            sent = re.search(r"Successful packets:\s+(\d+)", rp.stdout)
            sender_cpu = None
        else:
            rp = subprocess.run(["ip", "netns", "exec", v.replay_ns, "taskset", "-c", str(replay_cpu),
                                 tool_bin("blast"), v.replay_if, capture, str(rate)], capture_output=True, text=True)
            m = re.search(r": ([\d.]+) packets/s", rp.stdout)
            sent = re.search(r"sent (\d+) packets", rp.stdout)
            sender_cpu = re.search(r"cpu ([\d.]+) s", rp.stdout)
        replay_s = time.monotonic() - t0
        achieved = float(m.group(1)) if m else 0.0
        sent = int(sent.group(1)) if sent else 0
        last, still = -1, 0
        while still < 20:
            rx = v.counters("sensor")["rx_packets"]
            time.sleep(0.1)
            still = still + 1 if rx == last else 0
            last = rx
        cpu = cpu_seconds(sensor.pid) - cpu0   # the sensor's CPU from the replay's start until it had seen all
        napi_cpu = cpu_seconds(napi) - napi0 if napi else None
        time.sleep(1.0)
        sensor.send_signal(signal.SIGTERM)
        sensor.wait(600)
        log = open(err_path).read()
        m = re.search(r"stopped after (\d+) packets \((\d+) dropped by the kernel\)", log)
        seen, kdrop = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
        iface = v.counters("sensor")
    finally:
        v.close()
        shutil.rmtree(work, ignore_errors=True)
    return {"rate": rate, "achieved_pps": round(achieved), "replay_s": round(replay_s, 2), "sent": sent,
            "seen": seen, "kernel_dropped": kdrop, "if_dropped": iface["rx_dropped"],
            "sender_cpu_s": float(sender_cpu.group(1)) if sender_cpu else None,
            "napi_cpu_s": None if napi_cpu is None else round(napi_cpu, 2),
            "sensor_cpu_s": round(cpu, 2), "sensor_pps_per_cpu_s": round(seen / cpu) if cpu > 0 else 0,
            "sustained": seen == n and kdrop == 0 and iface["rx_dropped"] == 0}


def _cell(x) -> str:
    return "–" if x is None else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", default=os.path.join(HERE, "out", "mixed-1600k.pcap"))
    ap.add_argument("--packets", type=int, default=1_600_000, help="build the capture with this many if missing")
    ap.add_argument("--rates", default="100000,200000,300000,500000,700000,0")
    ap.add_argument("--sensor-cpu", type=int, default=1)
    ap.add_argument("--replay-cpu", type=int, default=0)
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--buffer-mb", type=int, default=64, help="the sensor's kernel ring (--buffer-mb)")
    ap.add_argument("--sender", choices=("blast", "tcpreplay"), default="blast",
                    help="blast (bench/blast.c: sendmmsg, qdisc bypassed) or tcpreplay -K")
    ap.add_argument("--receive", choices=("napi", "sender"), default="napi",
                    help="the veth's receive work in a NAPI thread on the sensor's CPU, or in the sender's softirq")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/sensor_rate.py: needs root (network namespaces)")
    if not os.path.exists(a.capture):
        os.makedirs(os.path.dirname(a.capture), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_capture.py"), "--packets", str(a.packets),
                        "--out", a.capture, "-q"], check=True)
    n = count_packets(a.capture)
    rows = []
    print(f"capture {a.capture}: {n} packets; sensor on CPU {a.sensor_cpu}, {a.sender} on CPU {a.replay_cpu}, "
          f"receive: {a.receive}; load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print("| requested pps | achieved pps | sensor saw | kernel dropped | interface dropped | sender CPU s | "
          "NAPI thread CPU s | sensor CPU s | packets per sensor CPU s | sustained |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for i, r in enumerate(int(x) for x in a.rates.split(",")):
        try:
            row = one_rate(a.capture, r, n, a.sensor_cpu, a.replay_cpu, f"b{os.getpid() % 1000}{i}", a.sender,
                           a.buffer_mb, a.receive)
        except RuntimeError as e:
            sys.exit(f"bench/sensor_rate.py: {e}")
        rows.append(row)
        print(f"| {'top speed' if r == 0 else f'{r:,}'} | {row['achieved_pps']:,} | {row['seen']:,} / {n:,} | "
              f"{row['kernel_dropped']:,} | {row['if_dropped']:,} | {_cell(row['sender_cpu_s'])} | "
              f"{_cell(row['napi_cpu_s'])} | {row['sensor_cpu_s']} | "
              f"{row['sensor_pps_per_cpu_s']:,} | {'yes' if row['sustained'] else 'no'} |",
              flush=True)
    if a.json_out:
        with open(a.json_out, "w") as fh:
            json.dump({"capture": a.capture, "packets": n, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
