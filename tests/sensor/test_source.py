"""sensor/source.py: the first packet's time read from the container, and paths refused up front."""
from __future__ import annotations

import gzip

import pytest

from otwatch.sensor.source import CaptureError, check_path, first_packet_ts
from support.capbuild import pcap, pcapng

PKT = b"\x02" * 60


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nanos", [False, True])
def test_first_packet_time_of_a_pcap(big, nanos):
    data = pcap([(1_700_000_123.25, PKT), (1_700_000_200.0, PKT)], big=big, nanos=nanos)
    assert first_packet_ts(data, len(data)) == pytest.approx(1_700_000_123.25)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("tsres", [None, 9, 0x80 | 20])
def test_first_packet_time_of_a_pcapng(big, tsres):
    data = pcapng([{"big": big, "ifaces": [(1, 6), (1, tsres)], "packets": [(1, 1_700_000_123.5, PKT)]}])
    assert first_packet_ts(data, len(data)) == pytest.approx(1_700_000_123.5, abs=1e-5)


def test_first_packet_time_unknown():
    data = pcap([])
    assert first_packet_ts(data, len(data)) is None
    assert first_packet_ts(b"not a capture at all", 20) is None
    data = pcapng([{"ifaces": [(1, None)], "packets": []}])
    assert first_packet_ts(data, len(data)) is None
    full = pcap([(1.0, PKT)])
    assert first_packet_ts(full, 30) is None            # the bytes do not reach the first record yet


def test_check_path_reads_the_magic_also_through_gzip(tmp_path):
    ok = tmp_path / "ok.pcap.gz"
    ok.write_bytes(gzip.compress(pcap([(1.0, PKT)])))
    check_path(str(ok))
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(CaptureError, match="not a pcap or pcapng capture"):
        check_path(str(bad))
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(CaptureError, match="compressed stream is damaged"):
        check_path(str(broken))
    check_path("-")                                     # standard input is read as it comes
