"""Host names from DHCP, DNS, NBNS and LLDP, from packets crafted with scapy."""
from __future__ import annotations

import pytest

from otwatch.parsers.hostnames import names

scapy = pytest.importorskip("scapy.all")
from scapy.layers.dhcp import BOOTP, DHCP  # noqa: E402
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402
from scapy.layers.netbios import NBNSHeader, NBNSRegistrationRequest  # noqa: E402


def test_dhcp_request_hostname_and_client_mac():
    pkt = BOOTP(op=1, chaddr=bytes.fromhex("00800a000001") + b"\x00" * 10, ciaddr="10.1.2.3") / \
        DHCP(options=[("message-type", "request"), ("hostname", b"plc-line1"), "end"])
    assert names("dhcp", bytes(pkt), 0) == [("plc-line1", "10.1.2.3", "00:80:0a:00:00:01")]


def test_dns_answer_a_and_aaaa():
    pkt = DNS(id=1, qr=1, qd=DNSQR(qname="hmi.plant.local"),
              an=[DNSRR(rrname="hmi.plant.local", type="A", rdata="10.10.0.21"),
                  DNSRR(rrname="hmi.plant.local", type="AAAA", rdata="fd00::21")])
    assert names("dns", bytes(pkt), 1) == [("hmi.plant.local", "10.10.0.21", ""), ("hmi.plant.local", "fd00::21", "")]


def test_dns_query_is_not_evidence():
    assert names("dns", bytes(DNS(id=1, qr=0, qd=DNSQR(qname="x.local"))), 0) == []


def test_dns_compression_loop_is_refused():
    raw = bytearray(bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.b"), an=DNSRR(rrname="a.b", rdata="1.2.3.4"))))
    raw[12:14] = b"\xc0\x0c"       # the question name points at itself
    assert names("dns", bytes(raw), 1) == []


def test_nbns_registration():
    pkt = NBNSHeader(OPCODE=5, NM_FLAGS=0x11, QDCOUNT=1, ARCOUNT=1) / \
        NBNSRegistrationRequest(QUESTION_NAME=b"EWS01", NB_ADDRESS="10.10.0.31")
    got = names("nbns", bytes(pkt), 0)
    assert got == [("EWS01", "10.10.0.31", "")]


def test_lldp_system_name_and_management_address():
    tlv = lambda t, v: bytes([(t << 1) | (len(v) >> 8), len(v) & 0xFF]) + v  # noqa: E731
    payload = (tlv(1, b"\x04" + bytes(6)) + tlv(2, b"\x05eth0") + tlv(3, b"\x00\x78") + tlv(5, b"plc1-m340")
               + tlv(8, b"\x05\x01\x0a\x0a\x00\x0b\x02\x00\x00\x00\x01\x00") + tlv(0, b""))
    assert names("lldp", payload, 0) == [("plc1-m340", "10.10.0.11", "")]


@pytest.mark.parametrize("kind", ["dhcp", "dns", "nbns", "lldp", "mdns", "llmnr"])
def test_garbage_never_raises(kind):
    import random

    rng = random.Random(kind)
    for n in range(300):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        assert isinstance(names(kind, blob, 0), list)
