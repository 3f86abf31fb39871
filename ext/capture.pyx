# cython: language_level=3, boundscheck=True, wraparound=False
"""Live capture through libpcap, compiled only (there is no pure twin: see sensor/live/afpacket.py).

libpcap on Linux reads a TPACKET_V3 memory-mapped ring (libpcap >= 1.5 uses
it whenever it can), applies the BPF filter in the kernel, and counts the
kernel's drops (``pcap_stats``).  ``dispatch`` hands a whole ring block to a C
callback that writes each packet as a *pcap record* (16-byte header, nanosecond
time stamps) into the caller's buffer: the engine then walks that buffer with
the same compiled loop it uses for files.  No Python object is made per
packet; Python runs once per block.

    cap = PcapCapture(iface, snaplen, bpf, buffer_bytes, promisc, timeout_ms)
    linktype = cap.activate()           # opens the device (needs CAP_NET_RAW)
    n = cap.header(buf)                 # writes the pcap file header at buf[0:24]
    end, npkts = cap.dispatch(buf, start)   # appends records at buf[start:], returns the new end
    cap.stats()                         # {"received", "dropped", "ifdropped"} from pcap_stats
    cap.fileno()                        # selectable descriptor
    cap.close()

The capture handle never transmits: ``pcap_inject``/``pcap_sendpacket`` are not
declared here, so the module cannot call them.
"""
from libc.string cimport memcpy
from libc.stdint cimport uint16_t, uint32_t

cdef extern from "poll.h" nogil:
    cdef struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *, unsigned long, int)
    short POLLIN

cdef extern from "pcap/pcap.h" nogil:
    ctypedef struct pcap_t:
        pass
    ctypedef unsigned int bpf_u_int32
    cdef struct timeval_:
        long tv_sec
        long tv_usec
    cdef struct pcap_pkthdr:
        timeval_ ts
        bpf_u_int32 caplen
        bpf_u_int32 len
    cdef struct pcap_stat:
        unsigned int ps_recv
        unsigned int ps_drop
        unsigned int ps_ifdrop
    cdef struct bpf_program:
        unsigned int bf_len
        void *bf_insns
    ctypedef void (*pcap_handler)(unsigned char *, const pcap_pkthdr *, const unsigned char *) noexcept
    int PCAP_ERRBUF_SIZE
    int PCAP_TSTAMP_PRECISION_NANO
    unsigned int PCAP_NETMASK_UNKNOWN
    pcap_t *pcap_create(const char *, char *)
    int pcap_set_snaplen(pcap_t *, int)
    int pcap_set_promisc(pcap_t *, int)
    int pcap_set_timeout(pcap_t *, int)
    int pcap_set_buffer_size(pcap_t *, int)
    int pcap_set_tstamp_precision(pcap_t *, int)
    int pcap_activate(pcap_t *)
    int pcap_datalink(pcap_t *)
    int pcap_compile(pcap_t *, bpf_program *, const char *, int, bpf_u_int32)
    int pcap_setfilter(pcap_t *, bpf_program *)
    void pcap_freecode(bpf_program *)
    int pcap_dispatch(pcap_t *, int, pcap_handler, unsigned char *)
    int pcap_stats(pcap_t *, pcap_stat *)
    char *pcap_geterr(pcap_t *)
    const char *pcap_statustostr(int)
    void pcap_close(pcap_t *)
    void pcap_breakloop(pcap_t *)
    int pcap_get_selectable_fd(pcap_t *)
    int pcap_setnonblock(pcap_t *, int, char *)
    const char *pcap_lib_version()

DEF REC_HDR = 16


cdef struct sink_t:
    unsigned char *buf
    Py_ssize_t pos
    Py_ssize_t cap
    Py_ssize_t packets
    unsigned char *spare       # one packet that did not fit, written first next time
    Py_ssize_t spare_len
    pcap_t *handle


cdef inline void _put_u32(unsigned char *p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)           # native order: the file header's magic is written the same way


cdef void _on_packet(unsigned char *user, const pcap_pkthdr *h, const unsigned char *data) noexcept nogil:
    cdef sink_t *s = <sink_t *> user
    cdef Py_ssize_t need = REC_HDR + h.caplen
    cdef unsigned char *p
    if s.pos + need > s.cap:
        if s.spare_len == 0 and need <= s.cap:
            p = s.spare
            s.spare_len = need
            pcap_breakloop(s.handle)
        else:
            return             # cannot happen: dispatch stops at the first packet that does not fit
    else:
        p = s.buf + s.pos
        s.pos += need
        s.packets += 1
    _put_u32(p, <uint32_t> h.ts.tv_sec)
    _put_u32(p + 4, <uint32_t> h.ts.tv_usec)     # nanoseconds: PCAP_TSTAMP_PRECISION_NANO
    _put_u32(p + 8, h.caplen)
    _put_u32(p + 12, h.len)
    memcpy(p + REC_HDR, data, h.caplen)


class CaptureError(OSError):
    """The device could not be opened or read; the text says why (libpcap's words)."""


cdef class PcapCapture:
    cdef pcap_t *handle
    cdef sink_t sink
    cdef bytearray spare
    cdef readonly str device
    cdef readonly int snaplen
    cdef readonly int linktype
    cdef readonly str warning
    cdef int fd
    cdef int timeout_ms

    def __cinit__(self):
        self.handle = NULL

    def __init__(self, str device, int snaplen=65535, str bpf="", int buffer_bytes=32 * 1024 * 1024,
                 bint promisc=True, int timeout_ms=100):
        cdef char errbuf[256]
        cdef bpf_program prog
        cdef int rc
        self.device = device
        self.snaplen = snaplen
        self.warning = ""
        self.spare = bytearray(snaplen + REC_HDR)
        errbuf[0] = 0
        self.handle = pcap_create(device.encode(), errbuf)
        if self.handle == NULL:
            raise CaptureError(f"{device}: {errbuf.decode(errors='replace')}")
        pcap_set_snaplen(self.handle, snaplen)
        pcap_set_promisc(self.handle, 1 if promisc else 0)
        pcap_set_timeout(self.handle, timeout_ms)
        pcap_set_buffer_size(self.handle, buffer_bytes)
        pcap_set_tstamp_precision(self.handle, PCAP_TSTAMP_PRECISION_NANO)
        rc = pcap_activate(self.handle)
        if rc < 0:
            msg = pcap_geterr(self.handle).decode(errors="replace") or pcap_statustostr(rc).decode()
            pcap_close(self.handle)
            self.handle = NULL
            raise CaptureError(f"{device}: {msg}")
        if rc > 0:
            self.warning = pcap_statustostr(rc).decode()
        self.linktype = pcap_datalink(self.handle)
        # Non-blocking, with our own poll(): with TPACKET_V3 a blocking read's timeout only starts
        # once a packet has arrived, so on a quiet link it would never return (and never see a
        # stop request).
        if pcap_setnonblock(self.handle, 1, errbuf) != 0:
            msg = errbuf.decode(errors="replace")
            self.close()
            raise CaptureError(f"{device}: {msg}")
        self.fd = pcap_get_selectable_fd(self.handle)
        self.timeout_ms = timeout_ms
        if bpf:
            if pcap_compile(self.handle, &prog, bpf.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
                msg = pcap_geterr(self.handle).decode(errors="replace")
                self.close()
                raise CaptureError(f"--bpf {bpf!r}: {msg}")
            rc = pcap_setfilter(self.handle, &prog)
            pcap_freecode(&prog)
            if rc != 0:
                msg = pcap_geterr(self.handle).decode(errors="replace")
                self.close()
                raise CaptureError(f"--bpf {bpf!r}: {msg}")

    def header(self, unsigned char[::1] buf not None) -> int:
        """Write a pcap file header (nanosecond magic, native order) at buf[0:24]; return 24."""
        if buf.shape[0] < 24:
            raise ValueError("buffer too small")
        cdef uint16_t v = 2
        _put_u32(&buf[0], 0xA1B23C4D)
        memcpy(&buf[4], &v, 2)          # version 2.4, in the magic's (native) order
        v = 4
        memcpy(&buf[6], &v, 2)
        _put_u32(&buf[8], 0)
        _put_u32(&buf[12], 0)
        _put_u32(&buf[16], <uint32_t> self.snaplen)
        _put_u32(&buf[20], <uint32_t> self.linktype)
        return 24

    def dispatch(self, unsigned char[::1] buf not None, Py_ssize_t start):
        """Append the packets of one ring block (or until the timeout) as pcap records at
        buf[start:]; return (new end, packets written).  Needs len(buf) - start >= snaplen + 16."""
        cdef int rc
        cdef pollfd pfd
        if self.handle == NULL:
            raise CaptureError("capture is closed")
        if buf.shape[0] - start < self.snaplen + REC_HDR:
            raise ValueError("buffer has no room for one packet")
        self.sink.buf = &buf[0]
        self.sink.cap = buf.shape[0]
        self.sink.pos = start
        self.sink.packets = 0
        self.sink.handle = self.handle
        if self.sink.spare_len:
            memcpy(self.sink.buf + start, self.sink.spare, self.sink.spare_len)
            self.sink.pos += self.sink.spare_len
            self.sink.packets = 1
            self.sink.spare_len = 0
        self.sink.spare = <unsigned char *> self.spare
        pfd.fd = self.fd
        pfd.events = POLLIN
        pfd.revents = 0
        with nogil:
            rc = 1
            if self.sink.packets == 0 and self.fd >= 0:
                rc = poll(&pfd, 1, self.timeout_ms)     # -1 with EINTR: a signal (stop, reload) came
            if rc > 0:
                rc = pcap_dispatch(self.handle, -1, _on_packet, <unsigned char *> &self.sink)
            else:
                rc = 0
        if rc == -1:                                     # -2 is pcap_breakloop: not an error
            raise CaptureError(f"{self.device}: {pcap_geterr(self.handle).decode(errors='replace')}")
        return self.sink.pos, self.sink.packets

    def stats(self) -> dict:
        cdef pcap_stat st
        if self.handle == NULL or pcap_stats(self.handle, &st) != 0:
            return {}
        return {"received": st.ps_recv, "dropped": st.ps_drop, "ifdropped": st.ps_ifdrop}

    def fileno(self) -> int:
        return pcap_get_selectable_fd(self.handle) if self.handle != NULL else -1

    def breakloop(self) -> None:
        if self.handle != NULL:
            pcap_breakloop(self.handle)

    def close(self) -> None:
        if self.handle != NULL:
            pcap_close(self.handle)
            self.handle = NULL

    def __dealloc__(self):
        if self.handle != NULL:
            pcap_close(self.handle)
            self.handle = NULL


def lib_version() -> str:
    return pcap_lib_version().decode()
