"""The OPC UA security capture and its builder (pcaps/make_opcua_security.py).

* The committed capture exists, stays small, holds only the scenario's hosts, and pcaps/README.md's
  host and time-line tables for it are exactly what the builder generates.
* The new decoder fields (DataChange items, TranslateBrowsePaths results) agree with Wireshark's.
* ``netns``: the builder really runs the asyncua peers in namespaces (root, ``ip netns``, tcpdump) and
  a short fresh capture shows the same security facts.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.veth import netns_unavailable

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
CAPTURE = PCAPS / "opcua-security.pcap"
README = PCAPS / "README.md"
BUILDER = PCAPS / "make_opcua_security.py"
MAX_BYTES = 400 * 1024
P = "http://opcfoundation.org/UA/SecurityPolicy#"

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def load_builder():
    if "make_opcua_security" in sys.modules:
        return sys.modules["make_opcua_security"]
    spec = importlib.util.spec_from_file_location("make_opcua_security", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def tshark_fields(pcap: Path, fields: list[str], display_filter: str = "") -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines()]


def section() -> str:
    text = README.read_text()
    start = text.index("## opcua-security.pcap")
    nxt = text.find("\n## ", start + 3)
    return text[start:] if nxt < 0 else text[start:nxt]


# --------------------------------------------------------------------------
def test_capture_committed_and_small():
    assert CAPTURE.is_file(), "run: sudo python pcaps/make_opcua_security.py"
    assert CAPTURE.stat().st_size < MAX_BYTES
    assert CAPTURE.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"), "classic pcap expected"


def test_readme_host_table_matches_builder():
    assert load_builder().host_table() in section()


@pytest.mark.tshark
@needs_tshark
def test_readme_timeline_matches_capture():
    table = load_builder().timeline_table(CAPTURE)
    assert "not in this capture" not in table
    assert table in section(), ("pcaps/README.md opcua-security time-line is stale; regenerate with "
                                "python pcaps/make_opcua_security.py --readme-tables pcaps/opcua-security.pcap")


@pytest.mark.tshark
@needs_tshark
def test_only_the_namespace_hosts_are_in_the_capture():
    b = load_builder()
    ips = {h.ip for h in b.HOSTS}
    macs = {h.mac for h in b.HOSTS} | {"ff:ff:ff:ff:ff:ff"}
    seen_ips, seen_macs = set(), set()
    for row in tshark_fields(CAPTURE, ["ip.src", "ip.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
                                       "eth.src", "eth.dst"]):
        for col in row[:4]:
            seen_ips.update(x for x in col.split("\x1f") if x)
        for col in row[4:]:
            seen_macs.update(x for x in col.split("\x1f") if x)
    assert seen_ips == ips and seen_macs <= macs


@pytest.mark.tshark
@needs_tshark
def test_deprecated_policies_and_certificates_visible_to_wireshark():
    rows = tshark_fields(CAPTURE, ["ip.src", "opcua.security.spu", "opcua.security.scert"],
                         "opcua.transport.type == \"OPN\"")
    used = {(r[0], r[1]) for r in rows}
    eng, legacy, modern = "10.30.0.41", "10.30.0.10", "10.30.0.20"
    for pol in ("Basic128Rsa15", "Basic256"):
        assert (eng, P + pol) in used and (legacy, P + pol) in used
    assert (eng, P + "Aes128_Sha256_RsaOaep") in used and (eng, P + "Basic256Sha256") in used
    assert all(r[2] for r in rows if not r[1].endswith("#None"))      # sender certificates in clear


def _ours():
    from otwatch.sensor import observations as O
    from otwatch.sensor.pipeline import Pipeline, Settings

    class C:
        by_frame: dict = {}

        def observe(self, o):
            if type(o) is O.Message and o.protocol == "opcua":
                self.by_frame.setdefault(o.frame, []).append(o.event)

    c = C()
    c.by_frame = {}
    p = Pipeline([c], Settings(detail_all=True))
    p.run_file(str(CAPTURE))
    p.finish()
    return c.by_frame


@pytest.mark.tshark
@needs_tshark
def test_new_decoder_fields_agree_with_wireshark():
    """DataChange client handles and scalar values, translate statuses and remaining-path indexes."""
    from otwatch.parsers.opcua import events as ev
    from otwatch.parsers.opcua.spec import status_name

    ours = _ours()
    checked = {"publish": 0, "handles": 0, "values": 0, "translate": 0}
    for r in tshark_fields(CAPTURE, ["frame.number", "opcua.ClientHandle", "opcua.Double", "opcua.UInt32",
                                     "opcua.Boolean"], "opcua.servicenodeid.numeric == 829"):
        frame, handles, doubles, u32, booleans = r
        (pub,) = [e for e in ours[int(frame)] if isinstance(e, ev.OPCUAPublishResponse)]
        mine = [d.client_handle for d in pub.data_changes] + [e.client_handle for e in pub.events]
        assert mine == [int(h) for h in handles.split("\x1f") if h], frame
        # event fields carry Doubles/UInt32s/Booleans too (Severity is a UInt16): compare the data changes
        by_type = {t: [d.value for d in pub.data_changes if d.value_type == t] for t in ("Double", "UInt32", "Boolean")}
        ws_d = [float(x) for x in doubles.split("\x1f") if x]
        assert [float(v) for v in by_type["Double"]] == ws_d[:len(by_type["Double"])], frame
        assert by_type["UInt32"] == [x for x in u32.split("\x1f") if x][:len(by_type["UInt32"])], frame
        ws_b = [{"1": "True", "0": "False", "True": "True", "False": "False"}[x] for x in booleans.split("\x1f") if x]
        assert by_type["Boolean"] == ws_b[:len(by_type["Boolean"])], frame
        checked["publish"] += 1
        checked["handles"] += len(mine)
        checked["values"] += sum(map(len, by_type.values()))
    for r in tshark_fields(CAPTURE, ["frame.number", "opcua.StatusCode", "opcua.RemainingPathIndex"],
                           "opcua.servicenodeid.numeric == 557"):
        frame, codes, remaining = r
        (tr,) = [e for e in ours[int(frame)] if isinstance(e, ev.OPCUATranslateBrowsePathsToNodeIdsResponse)]
        assert [x.status_name for x in tr.results] == [status_name(int(c, 16)) for c in codes.split("\x1f")]
        mine_rem = [t.remaining_path_index for x in tr.results for t in x.targets]
        assert mine_rem == [None if int(x) == 0xFFFFFFFF else int(x) for x in remaining.split("\x1f") if x]
        checked["translate"] += 1
    assert checked["publish"] >= 20 and checked["handles"] >= 60 and checked["values"] >= 40
    assert checked["translate"] >= 3


@pytest.mark.tshark
@needs_tshark
def test_oracle_compared_this_capture_and_met_the_documented_wireshark_bug():
    """The generic oracle (tests/oracle) really compared this capture, and its one documented Wireshark
    bug (opcua.ciphertext_as_plaintext: frame 170, a Basic128Rsa15 ciphertext read as service id 17) was met."""
    import asyncio

    pytest.importorskip("pyshark")
    spec = importlib.util.spec_from_file_location("oracle_opcua_security",
                                                  ROOT / "tests" / "oracle" / "test_oracle_tshark.py")
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    asyncio.set_event_loop(asyncio.new_event_loop())     # pyshark wants one; earlier asyncio tests may leave none
    assert "opcua.ciphertext_as_plaintext" in oracle.KNOWN_TSHARK_BUGS
    checked = oracle.check_opcua_fields(str(CAPTURE))
    assert checked["known_bug.opcua.ciphertext_as_plaintext"] == 1
    assert checked["servicenodeid"] >= 200 and checked["request_id"] >= 200
    assert checked["security_policy_uri"] == 16 and checked["applicationuri"] == 2


# --------------------------------------------------------------------------
def _netns_unavailable() -> str | None:
    return netns_unavailable(("tcpdump", "tshark"), ("asyncua",))


@pytest.mark.netns
def test_builder_fresh_capture(tmp_path):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    # a prefix of our own: the builder first removes leftovers of its prefix (killing what runs there),
    # so two test runs on one machine (several developers, CI) must never share one
    prefix = f"otwsec{os.getpid()}"
    t0 = time.time()
    r = subprocess.run([sys.executable, str(BUILDER), "--duration", "6", "--out", str(tmp_path),
                        "--prefix", prefix], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    elapsed = time.time() - t0
    pcap = tmp_path / "opcua-security.pcap"
    assert pcap.is_file()
    assert prefix + "-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    # the wire: deprecated policies in OPN security headers, the clear password's ActivateSession
    spus = {row[0] for row in tshark_fields(pcap, ["opcua.security.spu"], "opcua.transport.type == \"OPN\"")}
    assert {P + "None", P + "Basic128Rsa15", P + "Basic256", P + "Aes128_Sha256_RsaOaep", P + "Basic256Sha256"} <= spus
    # the inventory: the same findings on legacy, none on modern
    from otwatch.sensor.inventory.store import load_rows, open_inventory
    from otwatch.sensor.pipeline import Pipeline

    inv = open_inventory(":memory:")
    p = Pipeline([inv])
    p.run_file(str(pcap))
    p.finish()
    inv.flush()
    snap = load_rows(inv.db)
    inv.db.close()
    by_ip = {a["ip"]: a["asset_id"] for a in snap["assets"]}
    found = {}
    for row in snap["findings"]:
        found.setdefault(row["asset_id"], set()).add(row["finding"])
    assert found.get(by_ip["10.30.0.10"], set()) >= {
        "opcua.security_policy_none", "opcua.deprecated_policy", "opcua.anonymous_token", "opcua.cleartext_username",
        "opcua.cleartext_username_offered",
        "opcua.certificate_expired", "opcua.certificate_self_signed", "opcua.certificate_weak_key"}
    assert by_ip["10.30.0.20"] not in found
    assert elapsed < 30, f"rebuild took {elapsed:.1f} s"   # about 15 s on 2 shared cores
