"""Fallback capture without libpcap: a Linux AF_PACKET socket read from Python.

Slower than the libpcap ring (one ``recvmsg`` per packet, in Python) and
without BPF (a filter needs libpcap's compiler): the sensor says so and refuses
``--bpf``.  It keeps what the compiled capture gives the engine: the same pcap
records (nanosecond time stamps from SO_TIMESTAMPNS), VLAN tags the kernel
stripped put back from PACKET_AUXDATA (as libpcap does), and the kernel's drop
counter (PACKET_STATISTICS).  Nothing is ever sent on the socket.
"""
from __future__ import annotations

import select
import socket
import struct
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
LINKTYPE_ETHERNET = 1
_AUX = struct.Struct("=IIIHHHH")       # tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_REC = struct.Struct("=IIII")


class AFPacketCapture:
    def __init__(self, device: str, snaplen: int = 65535, bpf: str = "", buffer_bytes: int = 32 * 1024 * 1024,
                 promisc: bool = True, timeout_ms: int = 100):
        if bpf:
            raise OSError("--bpf needs libpcap (the compiled capture module); install libpcap-dev and reinstall")
        self.device = device
        self.snaplen = snaplen
        self.linktype = LINKTYPE_ETHERNET
        self.warning = "AF_PACKET fallback (no libpcap): slower, no BPF"
        self.timeout = timeout_ms / 1000
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
            s.bind((device, 0))
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if promisc:
                ifindex = socket.if_nametoindex(device)
                s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self.sock = s
        self._received = 0
        self._dropped = 0

    def header(self, buf) -> int:
        buf[0:24] = struct.pack("=IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, self.snaplen, self.linktype)
        return 24

    def dispatch(self, buf, start: int):
        end = start
        n = 0
        cap = len(buf)
        if not select.select([self.sock], [], [], self.timeout)[0]:
            return end, 0
        while cap - end >= self.snaplen + 16 + 4:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(self.snaplen, 256)
            except BlockingIOError:
                break
            ts_s, ts_ns = None, 0
            wirelen = len(data)
            for level, typ, val in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(val) >= _AUX.size:
                    status, plen, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(val)
                    wirelen = plen
                    if status & TP_STATUS_VLAN_VALID and len(data) >= 12:
                        tag = struct.pack("!HH", tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci)
                        data = data[:12] + tag + data[12:]
                        wirelen += 4
                elif level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    ts_s, ts_ns = struct.unpack("=qq", val[:16])
            if ts_s is None:
                t = time.time_ns()
                ts_s, ts_ns = divmod(t, 1_000_000_000)
            data = data[: self.snaplen]
            _REC.pack_into(buf, end, ts_s & 0xFFFFFFFF, ts_ns, len(data), wirelen)
            buf[end + 16:end + 16 + len(data)] = data
            end += 16 + len(data)
            n += 1
        self._received += n
        return end, n

    def stats(self) -> dict:
        try:
            pk, dr = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self._dropped += dr    # the kernel resets its counters on every read
        except OSError:
            pass
        return {"received": self._received + self._dropped, "dropped": self._dropped, "ifdropped": 0}

    def fileno(self) -> int:
        return self.sock.fileno()

    def breakloop(self) -> None:
        pass

    def close(self) -> None:
        self.sock.close()
