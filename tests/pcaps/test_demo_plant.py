"""The demo plant capture and its builder.

* The committed capture exists, stays small, and tshark (the Wireshark oracle)
  finds Modbus/TCP, MQTT and OPC UA and every host of the README table in it.
* pcaps/README.md's host and time-line tables are exactly what the builder
  generates from the committed capture (docs cannot drift from the file).
* ``netns``: the builder really builds the plant (root, ``ip netns``) and a
  short fresh capture again holds all three protocols.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.veth import netns_unavailable

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
CAPTURE = PCAPS / "demo-plant.pcap"
CAPTURE_NG = PCAPS / "demo-plant.pcapng"
README = PCAPS / "README.md"
BUILDER = PCAPS / "make_demo_plant.py"
MAX_BYTES = 3 * 1024 * 1024  # keep the repository light
OT_PROTOCOLS = ("modbus", "mqtt", "opcua")  # tshark protocol names

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def load_builder():
    spec = importlib.util.spec_from_file_location("make_demo_plant", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def readme_hosts() -> dict[str, str]:
    """host -> IP from the README host table."""
    rows = re.findall(r"^\| (\w+) \| (10\.10\.\d+\.\d+) \| ([0-9a-f:]{17}) \|", README.read_text(), re.M)
    return {name: ip for name, ip, _mac in rows}


def tshark_summary(pcap: Path) -> tuple[set[str], set[str], dict[str, int]]:
    """(protocol names, IPv4 addresses, frames per OT protocol) in one tshark pass."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    protos, ips, counts = set(), set(), dict.fromkeys(OT_PROTOCOLS, 0)
    for line in out.splitlines():
        stack, _, rest = line.partition("\t")
        layers = set(stack.split(":"))
        protos |= layers
        ips.update(x for x in rest.replace(",", "\t").split("\t") if x)
        for p in OT_PROTOCOLS:
            counts[p] += p in layers
    return protos, ips, counts


def tshark_count(pcap: Path, display_filter: str) -> int:
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", display_filter],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return len(out.splitlines())


# --------------------------------------------------------------------------
def test_capture_committed_and_small():
    assert CAPTURE.is_file(), "run: sudo python pcaps/make_demo_plant.py --pcapng"
    assert CAPTURE.stat().st_size < MAX_BYTES
    with CAPTURE.open("rb") as f:
        magic = f.read(4)
    assert magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"), "classic pcap expected"
    if CAPTURE_NG.exists():
        assert CAPTURE_NG.stat().st_size < MAX_BYTES
        assert CAPTURE_NG.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a", "pcapng section header expected"


def test_readme_host_table_matches_builder():
    hosts = readme_hosts()
    builder = load_builder()
    assert hosts == {h.name: h.ip for h in builder.HOSTS}
    assert builder.host_table() in README.read_text()


@pytest.mark.tshark
@needs_tshark
@pytest.mark.parametrize("proto", OT_PROTOCOLS)
def test_tshark_finds_protocol(proto):
    assert tshark_count(CAPTURE, proto) > 0


@pytest.mark.tshark
@needs_tshark
def test_tshark_finds_every_readme_host():
    protos, ips, counts = tshark_summary(CAPTURE)
    assert set(OT_PROTOCOLS) <= protos
    missing = {name: ip for name, ip in readme_hosts().items() if ip not in ips}
    assert not missing, f"hosts of the README table absent from the capture: {missing}"
    assert min(counts.values()) >= 50, counts


@pytest.mark.tshark
@needs_tshark
def test_readme_timeline_matches_capture():
    """The README time-line is regenerated with --readme-tables; it must match."""
    table = load_builder().timeline_table(CAPTURE)
    assert "not in this capture" not in table
    assert table in README.read_text(), (
        "pcaps/README.md time-line is stale; regenerate with "
        "python pcaps/make_demo_plant.py --readme-tables pcaps/demo-plant.pcap")


# --------------------------------------------------------------------------
def _netns_unavailable() -> str | None:
    return netns_unavailable(("tcpdump", "mosquitto", "mosquitto_passwd", "tshark"))


@pytest.mark.netns
def test_builder_fresh_capture(tmp_path):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"otwt{os.getpid()}"          # concurrent runs must not tear down each other's plant
    r = subprocess.run(
        [sys.executable, str(BUILDER), "--duration", "8", "--out", str(tmp_path), "--prefix", prefix],
        capture_output=True, text=True, timeout=90,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    pcap = tmp_path / "demo-plant.pcap"
    assert pcap.is_file()
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-" not in leftovers, "namespaces not torn down"
    protos, ips, counts = tshark_summary(pcap)
    assert all(counts[p] > 0 for p in OT_PROTOCOLS), counts
    missing = {name: ip for name, ip in readme_hosts().items() if ip not in ips}
    assert not missing, missing
    # the rogue's write is there
    assert tshark_count(pcap, "ip.src==10.10.0.66 && modbus.func_code==6") >= 1
