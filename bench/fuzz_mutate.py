"""Mutators for bench/fuzz.py: generic byte mutations plus structure-aware ones
for capture files (pcap records, pcapng blocks), kernel stream scripts
(segments, sides, gaps, protocol length fields) and DER.

``mutate(data, rng, kind, corpus, max_len)`` applies 1..4 stacked mutations.
"""
from __future__ import annotations

import random
import struct

from fuzz_targets import decode_script, encode_script

INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x01000000, 0x00FFFFFF,
                  0x10000000, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1)
HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x40000000, 0x10000001, 16 * 1024 * 1024 + 4)


# --- generic ------------------------------------------------------------------
def flip_bit(b: bytearray, rng):
    if b:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)


def set_byte(b: bytearray, rng):
    if b:
        b[rng.randrange(len(b))] = rng.choice(INTERESTING_8) if rng.random() < 0.5 else rng.randrange(256)


def set_word(b: bytearray, rng):
    if len(b) >= 4:
        size = rng.choice((2, 4))
        i = rng.randrange(len(b) - size + 1)
        v = rng.choice(INTERESTING_16 if size == 2 else INTERESTING_32)
        if rng.random() < 0.3:
            v = (v + rng.choice((-1, 1, len(b), -len(b)))) & ((1 << (8 * size)) - 1)
        b[i:i + size] = v.to_bytes(size, rng.choice(("big", "little")))


def insert_bytes(b: bytearray, rng):
    i = rng.randrange(len(b) + 1)
    n = rng.choice((1, 1, 2, 4, 8, 16, 64))
    fill = bytes(rng.randrange(256) for _ in range(n)) if rng.random() < 0.5 else bytes([rng.randrange(256)]) * n
    b[i:i] = fill


def delete_bytes(b: bytearray, rng):
    if b:
        i = rng.randrange(len(b))
        n = rng.choice((1, 1, 2, 4, 8, 16, 64, 512))
        del b[i:i + n]


def duplicate(b: bytearray, rng):
    if b:
        i = rng.randrange(len(b))
        n = rng.randrange(1, min(len(b) - i, 256) + 1)
        j = rng.randrange(len(b) + 1)
        b[j:j] = b[i:i + n]


def truncate(b: bytearray, rng):
    if b:
        del b[rng.randrange(len(b)):]


def splice(b: bytearray, rng, corpus):
    if corpus:
        other = rng.choice(corpus)
        if other:
            i = rng.randrange(len(b) + 1)
            j = rng.randrange(len(other))
            b[i:] = other[j:j + rng.randrange(1, len(other) - j + 1)]


GENERIC = (flip_bit, flip_bit, set_byte, set_word, set_word, insert_bytes, delete_bytes, duplicate, truncate)


# --- capture files ----------------------------------------------------------------
def _pcap_offsets(b: bytes):
    """Offsets of the record headers of a pcap, or of the blocks of a pcapng, and the endianness."""
    if len(b) >= 4 and b[:4] == b"\x0a\x0d\x0d\x0a":
        e = "<" if len(b) >= 12 and b[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        out, p = [], 0
        while p + 12 <= len(b) and len(out) < 4096:
            blen = struct.unpack_from(e + "I", b, p + 4)[0]
            out.append(p)
            if blen < 12 or blen % 4:
                break
            p += blen
        return "ng", e, out
    if len(b) < 24:
        return "pcap", "<", []
    e = "<" if b[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, p = [], 24
    while p + 16 <= len(b) and len(out) < 4096:
        out.append(p)
        p += 16 + struct.unpack_from(e + "I", b, p + 8)[0]
    return "pcap", e, out


def capture_length(b: bytearray, rng):
    """Set a record's caplen/wirelen or a block's length (or a packet block's caplen) to a huge or off-by-one value."""
    fmt, e, offs = _pcap_offsets(bytes(b))
    if not offs:
        return set_word(b, rng)
    p = rng.choice(offs)
    if fmt == "pcap":
        field = p + rng.choice((8, 8, 12))
    else:
        field = p + rng.choice((4, 4, 20, 24))
    if field + 4 > len(b):
        return
    old = struct.unpack_from(e + "I", b, field)[0]
    v = rng.choice(HUGE + (old + 1, old - 1, old + 4, old - 4, 0, 11, 12))
    struct.pack_into(e + "I", b, field, v & 0xFFFFFFFF)


def capture_record_op(b: bytearray, rng):
    """Drop, duplicate or swap whole records/blocks; or flip a byte inside the L2-L4 headers of one."""
    fmt, e, offs = _pcap_offsets(bytes(b))
    if len(offs) < 2:
        return flip_bit(b, rng)
    i = rng.randrange(len(offs) - 1)
    s, t = offs[i], offs[i + 1]
    rec = bytes(b[s:t])
    op = rng.randrange(4)
    if op == 0:
        del b[s:t]
    elif op == 1:
        b[t:t] = rec
    elif op == 2 and i + 2 < len(offs):
        u = offs[i + 2]
        b[s:u] = b[t:u] + rec
    else:
        hdr = 16 if fmt == "pcap" else 28
        lo, hi = s + hdr, min(t, s + hdr + 60)
        if hi > lo:
            j = rng.randrange(lo, hi)
            b[j] = rng.choice(INTERESTING_8) if rng.random() < 0.5 else b[j] ^ (1 << rng.randrange(8))


CAPTURE = (capture_length, capture_record_op, capture_record_op)


# --- kernel stream scripts ----------------------------------------------------------
def _proto_length(data: bytearray, rng):
    """Inside one stream segment: set a protocol length field (MBAP length, MQTT
    remaining length, OPC UA message size, UA String length) to a huge or off-by-one value."""
    if len(data) < 8:
        return set_word(data, rng)
    choice = rng.randrange(4)
    i = rng.randrange(len(data) - 7)
    if choice == 0:                   # MBAP length (big-endian u16 at +4)
        data[i + 4:i + 6] = rng.choice((0, 1, 2, 253, 254, 255, 256, 0xFFFF)).to_bytes(2, "big")
    elif choice == 1:                 # MQTT varint: up to 4 continuation bytes
        data[i + 1:i + 5] = rng.choice((b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x80\x80\x80\x01",
                                        b"\xff\x7f\x00\x00", b"\x00\x00\x00\x00"))
    elif choice == 2:                 # UA chunk size (little-endian u32 at +4) where a header type starts
        for tag in (b"MSG", b"OPN", b"CLO", b"HEL", b"ACK", b"ERR", b"RHE"):
            j = bytes(data).find(tag, rng.randrange(len(data)))
            if j >= 0 and j + 8 <= len(data):
                i = j
                break
        data[i + 4:i + 8] = struct.pack("<I", rng.choice(HUGE + (0, 7, 8, 12)))
    else:                             # a UA/MQTT length prefix anywhere
        data[i:i + 4] = struct.pack(rng.choice(("<i", ">i")), rng.choice((-1, -2, 0x7FFFFFFF, 0x10000000, 65535)))


def script_op(b: bytes, rng, corpus):
    """Mutate the script's structure: re-split, swap sides, add gaps/eofs, move data."""
    config, ops = decode_script(bytes(b))
    if rng.random() < 0.15:
        config = rng.randrange(256)
    if not ops:
        ops = [("feed", 0, b"")]
    k = rng.randrange(9)
    i = rng.randrange(len(ops))
    op = ops[i]
    if k == 0 and op[0] == "feed" and len(op[2]) > 1:       # split a segment
        c = rng.randrange(1, len(op[2]))
        ops[i:i + 1] = [("feed", op[1], op[2][:c]), ("feed", op[1], op[2][c:])]
    elif k == 1 and i + 1 < len(ops) and op[0] == "feed" and ops[i + 1][0] == "feed":   # merge
        ops[i:i + 2] = [("feed", op[1], op[2] + ops[i + 1][2])]
    elif k == 2:                                              # move a segment to the other side
        ops[i] = (op[0], 1 - op[1]) + tuple(op[2:])
    elif k == 3:                                              # a gap, sometimes gigabytes
        ops.insert(i, ("gap", rng.randrange(2), rng.choice((1, 3, 7, 100, 4096, 65536, 1 << 30, 0xFFFFFFFF))))
    elif k == 4:
        ops.insert(i + 1, ("eof", rng.randrange(2)))
    elif k == 5:
        del ops[i]
    elif k == 6:                                              # duplicate (retransmission-like, or replay)
        ops.insert(i, op)
    elif k == 7 and op[0] == "feed":                          # protocol length field
        d = bytearray(op[2])
        _proto_length(d, rng)
        ops[i] = ("feed", op[1], bytes(d))
    elif k == 8 and corpus:                                   # splice segments of another script
        _c, other = decode_script(rng.choice(corpus))
        if other:
            j = rng.randrange(len(other))
            ops[i:i] = other[j:j + rng.randrange(1, 4)]
    return bytearray(encode_script(ops, config))


def script_data(b: bytes, rng):
    """A generic byte mutation inside one segment's data (keeps the separators)."""
    config, ops = decode_script(bytes(b))
    feeds = [i for i, op in enumerate(ops) if op[0] == "feed"]
    if not feeds:
        return bytearray(b)
    i = rng.choice(feeds)
    d = bytearray(ops[i][2])
    rng.choice(GENERIC + (_proto_length,))(d, rng)
    ops[i] = ("feed", ops[i][1], bytes(d))
    return bytearray(encode_script(ops, config))


# --- DER ------------------------------------------------------------------------------
def der_op(b: bytearray, rng):
    """Walk the TLV tree; change one length (huge, long-form, indefinite) or tag."""
    tlvs = []
    p = 0
    stack = [(0, len(b))]
    while stack and len(tlvs) < 512:
        p, end = stack.pop()
        while p + 2 <= end and len(tlvs) < 512:
            tag, l0 = b[p], b[p + 1]
            if l0 < 0x80:
                hl, ln = 2, l0
            else:
                n = l0 & 0x7F
                if n == 0 or n > 4 or p + 2 + n > end:
                    break
                hl, ln = 2 + n, int.from_bytes(b[p + 2:p + 2 + n], "big")
            tlvs.append((p, hl, ln))
            if tag & 0x20 and p + hl + ln <= end:
                stack.append((p + hl, p + hl + ln))
            p += hl + ln
    if not tlvs:
        return flip_bit(b, rng)
    p, hl, ln = rng.choice(tlvs)
    k = rng.randrange(4)
    if k == 0:
        v = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, ln + 1, max(ln - 1, 0))) & 0xFFFFFFFF
        b[p + 1:p + hl] = b"\x84" + v.to_bytes(4, "big")
    elif k == 1:
        b[p + 1:p + hl] = b"\x80"                          # indefinite length: not DER
    elif k == 2:
        b[p] = rng.choice((0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x17, 0x18, 0xA0, 0xA3, 0x1F))
    else:
        del b[p + hl:p + hl + rng.randrange(ln + 1)]       # shorten the content, keep the length


# --- entry point --------------------------------------------------------------------------
def mutate(data: bytes, rng: random.Random, kind: str, corpus, max_len: int) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        r = rng.random()
        if kind == "script":
            if r < 0.35:
                b = script_op(bytes(b), rng, corpus)
            elif r < 0.85:
                b = script_data(bytes(b), rng)
            else:
                rng.choice(GENERIC)(b, rng)
            continue
        if kind == "capture" and r < 0.45:
            rng.choice(CAPTURE)(b, rng)
        elif kind == "der" and r < 0.45:
            der_op(b, rng)
        elif r < 0.9 or not corpus:
            rng.choice(GENERIC)(b, rng)
        else:
            splice(b, rng, corpus)
    if len(b) > max_len:
        del b[max_len:]
    return bytes(b)
