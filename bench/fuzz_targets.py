"""Fuzz targets and their oracles (used by bench/fuzz.py and tests/bench/).

A target turns one input (bytes) into calls on an entry point that takes
attacker bytes, and checks the contract of that entry point.  Any breach
raises :class:`Finding`; anything else the target lets escape is a finding too
(the harness catches it).  Targets are deterministic: the same bytes give the
same calls (split points come from a PRNG seeded by the input).

Oracles (docs/fuzzing.md has the table):

* only the documented outcome: kernels return FEED_OK/FEED_VIOLATION and
  never raise; ``Engine.feed`` raises only ValueError (not a capture);
  ``decode`` never raises and never reports its own crash (``malformed``
  starting "internal decoder error" / "decoder error"); hostnames, tls and
  certs never raise;
* compiled == pure, exactly: records, statuses, ``seen`` tallies, counters;
* no read outside ``data[start:end]``: the same feed with different bytes
  around the window gives the same result;
* the engine gives the same records whether the file comes whole or in chunks;
* bounded buffering (pure path, where the kernel state is visible) and
  bounded memory (tracemalloc peak, sampled by the harness);
* byte accounting: after both ends, a kernel's decoded + skipped + encrypted
  bytes equal the bytes it was fed (gaps: see ``_accounting``); per flow,
  the engine never reports more decoded + skipped + encrypted bytes than the
  flow carried (payload + gap bytes);
* every anomaly id is documented (docs/observations.md, docs/protocols/).
"""
from __future__ import annotations

import json
import os
import random
import re
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from otwatch import ext  # noqa: E402
from otwatch.parsers.limits import DEFAULT_LIMITS, Limits  # noqa: E402

SEP = b"\xfe#SEG"
"""Separator of the segments of a kernel stream script."""

HAVE_COMPILED = ext.IMPLEMENTATION == "compiled"
IMPLS = ("pure", "compiled") if HAVE_COMPILED else ("pure",)

KERNEL_LIMITS = (
    DEFAULT_LIMITS,
    Limits(stream_max_buffer=4096, mqtt_max_message=2048, opcua_max_message=8192, opcua_max_chunks=4,
           modbus_max_pending=4, mqtt_max_aliases=4, probe_max_bytes=64),
    Limits(stream_max_buffer=64, mqtt_max_message=32, opcua_max_message=64, opcua_max_chunks=2,
           modbus_max_pending=1, mqtt_max_aliases=1, probe_max_bytes=8),
    Limits(stream_max_buffer=1 << 20, mqtt_max_message=1 << 20, opcua_max_message=1 << 24,
           opcua_max_chunks=1, modbus_max_pending=500, mqtt_max_aliases=0),
)
ENGINE_LIMITS = (
    DEFAULT_LIMITS,
    Limits(max_flows=4, flow_idle_timeout=2.0, tcp_closed_linger=0.5, reassembly_max_ooo_segments=3,
           reassembly_max_ooo_bytes=300, probe_max_bytes=32, stream_max_buffer=2048, mqtt_max_message=512,
           opcua_max_message=2048, opcua_max_chunks=3, modbus_max_pending=2),
)


class Finding(Exception):
    """An oracle failed: *kind* names the oracle, *detail* says how."""

    def __init__(self, kind: str, detail: str, sig: str | None = None):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind
        self.detail = detail
        self.sig = sig          # what makes two findings "the same bug" (default: derived from the detail)


def _short(x, n: int = 300) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n] + "...[%d]" % len(s)


def _first_diff(a, b, path="") -> str:
    """Where two nested structures first differ (for readable findings)."""
    if type(a) is not type(b):
        return "%s: type %s != %s (%s vs %s)" % (path, type(a).__name__, type(b).__name__, _short(a, 80), _short(b, 80))
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            for i in range(min(len(a), len(b))):
                if a[i] != b[i]:
                    return _first_diff(a[i], b[i], "%s[%d]" % (path, i))
            return "%s: length %d != %d; extra %s" % (path, len(a), len(b),
                                                      _short(a[len(b):] if len(a) > len(b) else b[len(a):], 200))
        for i in range(len(a)):
            if a[i] != b[i]:
                return _first_diff(a[i], b[i], "%s[%d]" % (path, i))
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=repr):
            if a.get(k, KeyError) != b.get(k, KeyError):
                return _first_diff(a.get(k), b.get(k), "%s[%r]" % (path, k))
    return "%s: %s != %s" % (path, _short(a, 150), _short(b, 150))


# ---------------------------------------------------------------------------
# documented anomaly ids
# ---------------------------------------------------------------------------
_DOC_IDS: set | None = None


def documented_ids() -> set:
    global _DOC_IDS
    if _DOC_IDS is None:
        ids = set()
        for rel in ("docs/observations.md", "docs/protocols/modbus.md", "docs/protocols/mqtt.md",
                    "docs/protocols/opcua.md"):
            try:
                with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
                    ids |= set(re.findall(r"\b(?:modbus|mqtt|opcua|capture|dispatch|memcap)\.[a-z_]+\b", fh.read()))
            except OSError:
                pass
        _DOC_IDS = ids
    return _DOC_IDS


# ---------------------------------------------------------------------------
# stream scripts (kernel targets)
# ---------------------------------------------------------------------------
def encode_script(ops, config: int = 0) -> bytes:
    """[("feed", side, bytes) | ("gap", side, n) | ("eof", side)] -> fuzz input."""
    parts = [bytes([config & 0xFF])]
    for op in ops:
        side = op[1] & 1
        if op[0] == "feed":
            parts.append(bytes([side]) + op[2])
        elif op[0] == "gap":
            parts.append(bytes([side | 4]) + struct.pack(">I", min(op[2], 0xFFFFFFFF)))
        else:
            parts.append(bytes([side | 6]))
    return SEP.join(parts)


def decode_script(data: bytes):
    """fuzz input -> (config byte, ops).  Total: any bytes give a script."""
    if not data:
        return 0, []
    config = data[0]
    ops = []
    for seg in data[1:].split(SEP):
        if not seg:
            continue
        c = seg[0]
        side = c & 1
        kind = (c >> 1) & 3
        rest = seg[1:]
        if kind <= 1:
            ops.append(("feed", side, rest))
        elif kind == 2:
            ops.append(("gap", side, int.from_bytes(rest[:4], "big") if rest else 0))
        else:
            ops.append(("eof", side))
    return config, ops


def split_points(rng: random.Random, n: int) -> list[int]:
    if n <= 1:
        return []
    k = rng.choice((0, 0, 1, 1, 2, 3, 5))
    return sorted(set(rng.randrange(1, n) for _ in range(k)))


COUNTERS = {
    "modbus": ("confirmed", "violation", "messages", "bytes_decoded", "bytes_skipped", "bytes_encrypted",
               "requests", "responses", "exceptions", "unsolicited", "unanswered"),
    "mqtt": ("confirmed", "level", "violation", "messages", "bytes_decoded", "bytes_skipped", "bytes_encrypted"),
    "opcua": ("confirmed", "messages", "bytes_decoded", "bytes_skipped", "bytes_encrypted", "mode", "policy",
              "channel_id"),
}
CORES = {"modbus": "ModbusCore", "mqtt": "MQTTCore", "opcua": "OPCUACore"}


def _pieces(ops, rng: random.Random):
    """Split each feed at PRNG points; gaps/eofs pass through."""
    out = []
    for op in ops:
        if op[0] == "feed":
            data = op[2]
            prev = 0
            for c in split_points(rng, len(data)) + [len(data)]:
                out.append(("feed", op[1], data[prev:c]))
                prev = c
        else:
            out.append(op)
    return out


def _buffer_sizes(proto: str, core) -> list[int]:
    """Bytes the (pure) kernel holds per direction, read from its state."""
    if proto == "modbus":
        return [core.buffered(0), core.buffered(1)]
    if proto == "mqtt":
        return [len(core.d0.buf), len(core.d1.buf)]
    return [len(core._d0.buf) + sum(len(x) for x in getattr(core._d0, "pending", {}).values()
                                     if isinstance(x, (bytes, bytearray))),
            len(core._d1.buf) + sum(len(x) for x in getattr(core._d1, "pending", {}).values()
                                     if isinstance(x, (bytes, bytearray)))]


def _buffer_bound(proto: str, limits: Limits) -> int:
    if proto == "modbus":
        from otwatch.parsers.modbus import spec
        return spec.MAX_ADU_LEN
    if proto == "mqtt":
        return max(limits.mqtt_max_message, 16) + 8
    return max(limits.stream_max_buffer, limits.opcua_max_message) + 64


def run_kernel(proto: str, impl: str, pieces, limits: Limits, detail_all: bool, pad: bytes = b"\xa5\x5a",
               check_buffers: bool = False):
    """Run one kernel over *pieces*; return (trace, counters, seen, fed, gaps)."""
    mod = ext.load(proto, impl)
    seen: dict = {}
    core = getattr(mod, CORES[proto])(seen, detail_all, limits)
    trace = []
    fed = gaps = 0
    bound = _buffer_bound(proto, limits) if check_buffers else 0
    for i, op in enumerate(pieces):
        out: list = []
        if op[0] == "feed":
            data = op[2]
            buf = pad[:1] * 3 + data + pad[1:2] * 3
            st = core.feed(op[1], buf, 3, 3 + len(data), float(i), i + 1, out)
            fed += len(data)
        elif op[0] == "gap":
            st = core.gap(op[1], op[2], float(i), i + 1, out)
            gaps += op[2]
        else:
            st = core.eof(op[1], float(i), i + 1, out)
        if st not in (0, -1):
            raise Finding("kernel.status", "%s %s returned %r" % (impl, op[0], st))
        trace.append((st, out))
        if check_buffers:
            for side, n in enumerate(_buffer_sizes(proto, core)):
                if n > bound:
                    raise Finding("kernel.buffer_bound", "%s side %d buffers %d bytes > %d after op %d"
                                  % (proto, side, n, bound, i))
    counters = tuple(getattr(core, c) for c in COUNTERS[proto])
    return trace, counters, seen, fed, gaps


def _decoder(proto: str):
    import importlib
    return importlib.import_module("otwatch.parsers.%s.decode" % proto)


def _to_dict(proto: str, event):
    if proto == "modbus":
        from otwatch.parsers.modbus import to_dict
        return to_dict(event)
    return _decoder(proto).to_dict(event)


_BAD_MALFORMED = ("internal decoder error", "decoder error")


def check_decode(proto: str, key, raw, ctx, side):
    """decode + describe + to_dict of one record: the documented outcome only."""
    dec = _decoder(proto)
    ev = dec.decode(key, raw, ctx, side)
    mal = getattr(ev, "malformed", None)
    if isinstance(mal, str) and mal.startswith(_BAD_MALFORMED):
        raise Finding("decode.internal_error", "%s decode(%r) -> %s" % (proto, _short(key, 120), mal))
    try:
        d = dec.describe(key)
    except Exception as exc:
        raise Finding("describe.raised", "%s describe(%r): %s: %s" % (proto, key, type(exc).__name__, exc))
    if not (isinstance(d, tuple) and len(d) == 3 and all(isinstance(x, str) for x in d)):
        raise Finding("describe.shape", "%s describe(%r) -> %r" % (proto, key, d))
    try:
        json.dumps(_to_dict(proto, ev))
    except Exception as exc:
        raise Finding("to_dict.raised", "%s to_dict(%s): %s: %s" % (proto, type(ev).__name__, type(exc).__name__,
                                                                    exc))
    return ev


def _accounting(proto: str, counters, fed: int, gaps: int, violated: bool):
    """After eof on both sides: every fed byte is decoded, skipped or encrypted.

    Gap bytes: Modbus and MQTT add the missing bytes to ``bytes_skipped``
    (MQTT not once it is encrypted or violated), OPC UA does not; so the
    total lies between fed and fed + gaps."""
    names = COUNTERS[proto]
    c = dict(zip(names, counters))
    total = c["bytes_decoded"] + c["bytes_skipped"] + c["bytes_encrypted"]
    if total < fed or total > fed + gaps:
        how = "%s %s%s" % (proto, "bytes counted twice" if total > fed + gaps else "bytes not counted",
                           " (after a violation before confirmation)" if violated else "")
        raise Finding("kernel.accounting", "%s: decoded %d + skipped %d + encrypted %d = %d, fed %d, gaps %d"
                      % (proto, c["bytes_decoded"], c["bytes_skipped"], c["bytes_encrypted"], total, fed, gaps),
                      sig=how)


def kernel_target(proto: str, data: bytes, impls=IMPLS, deep: bool = True):
    """The protocol kernel on a stream script; decode every record it emits."""
    config, ops = decode_script(data)
    limits = KERNEL_LIMITS[config & 3]
    detail_all = bool(config & 4)
    rng = random.Random(zlib.crc32(data))
    pieces = _pieces(ops, rng) + [("eof", 0), ("eof", 1)]
    results = {}
    for impl in impls:
        try:
            results[impl] = run_kernel(proto, impl, pieces, limits, detail_all, check_buffers=(impl == "pure"))
        except Finding:
            raise
        except Exception as exc:
            raise Finding("kernel.raised", "%s %s: %s: %s" % (proto, impl, type(exc).__name__, exc)) from exc
    ref = results[impls[0]]
    for impl in impls[1:]:
        if results[impl][:3] != ref[:3]:
            raise Finding("kernel.compiled_vs_pure", "%s: %s" % (proto, _first_diff(ref[:3], results[impl][:3])))
    if deep:
        # bytes around the window must not matter
        impl = impls[-1]
        other = run_kernel(proto, impl, pieces, limits, detail_all, pad=b"\x00\xff")
        if other[:3] != ref[:3]:
            raise Finding("kernel.reads_outside_window", "%s %s: %s" % (proto, impl, _first_diff(ref[:3], other[:3])))
        probe_mod = [ext.load(proto, i) for i in impls]
        for op in ops[:4]:
            if op[0] == "feed" and op[2]:
                d = op[2]
                for s, e in ((0, len(d)), (1, len(d) - 1), (len(d) // 2, len(d) + 5)):
                    got = [m.probe(d, s, e) for m in probe_mod]
                    if got[0] not in (0, 1, 2) or len(set(got)) != 1:
                        raise Finding("probe", "%s probe(%d, %d) -> %r" % (proto, s, e, got))
    trace, counters, seen, fed, gaps = ref
    confirmed = dict(zip(COUNTERS[proto], counters))["confirmed"]
    _accounting(proto, counters, fed, gaps, not confirmed and any(st < 0 for st, _ in trace))
    doc = documented_ids()
    for st, out in trace:
        for rec in out:
            if rec[0] == 1:
                if len(rec) != 7 or not isinstance(rec[4], tuple) or not isinstance(rec[5], (bytes, bytearray)):
                    raise Finding("kernel.record_shape", _short(rec))
                check_decode(proto, rec[4], rec[5], rec[6], rec[1])
            elif rec[0] == 2:
                if len(rec) != 6 or not isinstance(rec[4], str) or not isinstance(rec[5], str):
                    raise Finding("kernel.record_shape", _short(rec))
                if doc and rec[4] not in doc:
                    raise Finding("anomaly.undocumented", "%s emits %r" % (proto, rec[4]))
            else:
                raise Finding("kernel.record_shape", _short(rec))
    return len(trace)


# ---------------------------------------------------------------------------
# engine on whole captures
# ---------------------------------------------------------------------------
_KERNELS: dict = {}


def _engine_kernels(impl: str) -> dict:
    k = _KERNELS.get(impl)
    if k is None:
        k = {}
        for name, app in (("modbus", 1), ("mqtt", 2), ("opcua", 3)):
            mod = ext.load(name, impl)
            k[app] = (getattr(mod, CORES[name]), mod.probe)
        _KERNELS[impl] = k
    return k


PORTS = {502: 1, 1883: 2, 4840: 3}
TLS_PORTS = {802: 1, 8883: 2, 4843: 3}


def run_engine(impl: str, blob: bytes, cuts, limits: Limits, detail_all: bool, interval: float):
    """Feed *blob* in the chunks given by *cuts* (None: whole); (records, stats, error)."""
    E = ext.load("engine", impl)
    eng = E.Engine(_engine_kernels(impl), limits, PORTS, TLS_PORTS, detail_all, interval)
    records = []
    err = None
    try:
        if cuts is None:
            used = eng.feed(blob, True)
            if used != len(blob):
                raise Finding("engine.consumed", "final feed consumed %d of %d" % (used, len(blob)))
        else:
            carry = b""
            prev = 0
            for c in list(cuts) + [len(blob)]:
                buf = carry + blob[prev:c]
                prev = c
                used = eng.feed(buf, False)
                if not 0 <= used <= len(buf):
                    raise Finding("engine.consumed", "feed consumed %d of %d" % (used, len(buf)))
                carry = buf[used:]
                records += eng.take()
            used = eng.feed(carry, True)
            if used != len(carry):
                raise Finding("engine.consumed", "final feed consumed %d of %d" % (used, len(carry)))
        records += eng.take()
        eng.finish()
        records += eng.take()
    except ValueError as exc:        # the documented outcome: not a capture
        err = "ValueError: %s" % exc
        records += eng.take()
    return records, eng.stats(), err


def _diff_sig(a, b):
    """Name an engine difference by the record kind where it starts (19: an interval record)."""
    ra, rb = a[0], b[0]
    for i in range(min(len(ra), len(rb))):
        if ra[i] != rb[i]:
            return "first differing record: tags %d/%d" % (ra[i][0], rb[i][0])
    if len(ra) != len(rb):
        extra = ra[len(rb)] if len(ra) > len(rb) else rb[len(ra)]
        return "extra record: tag %d" % extra[0]
    return "stats or error differ"


_OFFSET = re.compile(r"offset \d+")


def _normalised(result):
    """Anomaly details name offsets in the buffer being walked (chunk-relative): ignore them."""
    records, stats, err = result
    return ([r[:8] + (_OFFSET.sub("offset N", r[8]),) if r[0] == 16 else r for r in records], stats,
            _OFFSET.sub("offset N", err) if err else err)


def _check_flow_accounting(records):
    for r in records:
        if r[0] == 11:
            (_, fid, ts, frame, reason, first_ts, pc, ps, bc, bs, plc, pls, app, state, guessed,
             decoded, skipped, encrypted, gaps, messages) = r
            if min(decoded, skipped, encrypted, gaps, messages, plc, pls) < 0:
                raise Finding("engine.accounting", "flow %d negative counter %r" % (fid, r[15:]))
            if decoded + skipped + encrypted > plc + pls + gaps:
                raise Finding("engine.accounting",
                              "flow %d: decoded %d + skipped %d + encrypted %d > payload %d + %d + gaps %d"
                              % (fid, decoded, skipped, encrypted, plc, pls, gaps))


def _pipeline_observations(records, impl: str):
    """Turn engine records into observations and JSON, as otwatch analyze does."""
    from otwatch.sensor.jsonout import dumps
    from otwatch.sensor.pipeline import Pipeline, Settings

    got = []

    class C:
        def observe(self, obs):
            got.append(obs)

    p = Pipeline([C()], Settings(implementation=impl))
    p._records(records)
    doc = documented_ids()
    for obs in got:
        dumps(obs)
        ev = getattr(obs, "event", None)
        mal = getattr(ev, "malformed", None)
        if isinstance(mal, str) and mal.startswith(_BAD_MALFORMED):
            raise Finding("decode.internal_error", "%s %s: %s" % (obs.protocol, getattr(obs, "kind", "?"), mal))
        if type(obs).__name__ == "Anomaly" and doc and obs.id not in doc:
            raise Finding("anomaly.undocumented", "engine emits %r" % obs.id)
    return len(got)


def engine_target(data: bytes, impls=IMPLS, deep: bool = True):
    """The engine (record walk .. dispatch) and the pipeline's decoding on one capture file."""
    h = zlib.crc32(data)
    rng = random.Random(h)
    limits = ENGINE_LIMITS[h & 1]
    detail_all = bool(h & 2)
    interval = (60.0, 1.0, 0.001, 1e9)[(h >> 2) & 3]
    cuts = split_points(rng, len(data)) if len(data) > 1 else []
    res = {}
    for impl in impls:
        try:
            res[impl] = run_engine(impl, data, cuts, limits, detail_all, interval)
        except Finding:
            raise
        except Exception as exc:
            raise Finding("engine.raised", "%s: %s: %s" % (impl, type(exc).__name__, exc)) from exc
    ref = res[impls[0]]
    for impl in impls[1:]:
        if res[impl] != ref:
            raise Finding("engine.compiled_vs_pure", _first_diff(ref, res[impl]), sig=_diff_sig(ref, res[impl]))
    if deep:
        impl = impls[-1]
        try:
            whole = run_engine(impl, data, None, limits, detail_all, interval)
        except Exception as exc:
            raise Finding("engine.raised", "%s whole: %s: %s" % (impl, type(exc).__name__, exc)) from exc
        if _normalised(whole) != _normalised(ref):
            corrupt = any(r[0] == 16 and r[7] == "capture.corrupt_record" for r in whole[0])
            raise Finding("engine.chunking", "whole file vs chunks %r: %s" % (cuts, _first_diff(whole, ref)),
                          sig="after capture.corrupt_record" if corrupt else None)
    records, stats, err = ref
    _check_flow_accounting(records)
    try:
        _pipeline_observations(records, impls[-1])
    except Finding:
        raise
    except Exception as exc:
        raise Finding("pipeline.raised", "%s: %s" % (type(exc).__name__, exc)) from exc
    return len(records)


# ---------------------------------------------------------------------------
# decoders fed directly
# ---------------------------------------------------------------------------
_TEMPLATES: list | None = None


def decoder_templates() -> list:
    """[(proto, key, ctx)] of every distinct key kind the kernels emit on the seeds."""
    global _TEMPLATES
    if _TEMPLATES is None:
        import fuzz_seeds
        seen = {}
        for proto, scripts in sorted(fuzz_seeds.stream_seeds().items()):
            for ops in scripts:
                for rec in _records(proto, ops):
                    k = (proto, _shape(rec[4]))
                    if k not in seen:
                        seen[k] = (proto, rec[4], rec[6], rec[1], rec[5])
        _TEMPLATES = [seen[k] for k in sorted(seen, key=repr)]
    return _TEMPLATES


def _shape(key):
    return tuple(x if isinstance(x, int) and i == 0 else type(x).__name__ for i, x in enumerate(key)) \
        if isinstance(key, tuple) else repr(key)


def _records(proto: str, ops):
    mod = ext.load(proto, "compiled" if HAVE_COMPILED else "pure")
    core = getattr(mod, CORES[proto])({}, True, DEFAULT_LIMITS)
    out: list = []
    for i, op in enumerate(ops):
        if op[0] == "feed":
            core.feed(op[1], op[2], 0, len(op[2]), 0.0, i, out)
        elif op[0] == "gap":
            core.gap(op[1], op[2], 0.0, i, out)
        else:
            core.eof(op[1], 0.0, i, out)
    return [r for r in out if r[0] == 1]


_KEY_VALUES = (-1, 0, 1, 255, 256, 65535, 65536, 2**31 - 1, 2**32 - 1, 2**63 - 1)


def decoders_target(data: bytes):
    """decode(key, raw, ctx, side) directly: template chosen by the first bytes, raw = the rest."""
    tpl = decoder_templates()
    if len(data) < 3 or not tpl:
        return 0
    proto, key, ctx, side, _raw = tpl[int.from_bytes(data[:2], "big") % len(tpl)]
    flags = data[2]
    raw = data[3:]
    side = flags & 1
    if flags & 2 and isinstance(key, tuple) and len(key) > 1:
        i = 1 + (flags >> 4) % (len(key) - 1)
        if isinstance(key[i], int):
            key = key[:i] + (_KEY_VALUES[(flags >> 2) & 3 if not flags & 0x80 else 4 + ((flags >> 2) & 3)],) \
                + key[i + 1:]
    if flags & 0x40:
        ctx = None
    check_decode(proto, key, raw, ctx, side)
    if proto == "opcua":
        from otwatch.parsers.opcua.binary import DecodeError, Reader
        r = Reader(raw)
        name = ("variant", "data_value", "extension_object", "diagnostic_info", "expanded_nodeid",
                "localized_text", "nodeid", "string")[flags >> 5]
        try:
            getattr(r, name)()
        except DecodeError:
            pass
        if not 0 <= r.pos <= len(raw):
            raise Finding("opcua.reader_pos", "%s ended at %d of %d" % (name, r.pos, len(raw)))
    return 1


def decoders_seeds() -> list[bytes]:
    out = []
    for i, (proto, key, ctx, side, raw) in enumerate(decoder_templates()):
        out.append(i.to_bytes(2, "big") + bytes([side & 1]) + bytes(raw))
    return out


# ---------------------------------------------------------------------------
# hostnames, tls, certs
# ---------------------------------------------------------------------------
AUX_KINDS = ("dhcp", "dns", "mdns", "llmnr", "nbns", "lldp")


def hostnames_target(data: bytes):
    from otwatch.parsers import hostnames
    if not data:
        return 0
    kind = AUX_KINDS[(data[0] >> 1) % len(AUX_KINDS)]
    got = hostnames.names(kind, data[1:], data[0] & 1)
    if not isinstance(got, list) or len(got) > hostnames.MAX_NAMES:
        raise Finding("hostnames.bound", "%s -> %d names" % (kind, len(got)))
    for t in got:
        if not (isinstance(t, tuple) and len(t) == 3 and all(isinstance(x, str) for x in t)):
            raise Finding("hostnames.shape", "%s -> %r" % (kind, t))
        if len(t[0]) > hostnames.MAX_NAME:
            raise Finding("hostnames.name_bound", "%s name of %d chars > %d: %r"
                          % (kind, len(t[0]), hostnames.MAX_NAME, t[0][:80]))
    return len(got)


def hostnames_seeds() -> list[bytes]:
    import fuzz_seeds
    out = []
    for kind, side, payload in fuzz_seeds.aux_seeds():
        if kind in AUX_KINDS:
            out.append(bytes([AUX_KINDS.index(kind) << 1 | (side & 1)]) + payload)
    # DHCP request with host name and client id, NBNS name query/response
    dhcp = bytearray(240)
    dhcp[0], dhcp[1], dhcp[2] = 1, 1, 6
    dhcp[28:34] = bytes.fromhex("020000000101")
    dhcp[236:240] = b"\x63\x82\x53\x63"
    dhcp += (b"\x35\x01\x03" + b"\x0c\x05plc-1" + b"\x51\x08\x00\x00\x00plc1."
             + b"\x3d\x07\x01\x02\x00\x00\x00\x01\x01" + b"\xff")
    out.append(bytes([0]) + bytes(dhcp))
    nb = b"\x80\x00\x85\x00\x00\x00\x00\x01\x00\x00\x00\x00" + b"\x20" + b"EOFAEMEJEDEFCACACACACACACACACAAA" \
        + b"\x00\x00\x20\x00\x01\x00\x00\x00\x3c\x00\x06\x00\x00\x0a\x0a\x00\x05"
    out.append(bytes([AUX_KINDS.index("nbns") << 1 | 1]) + nb)
    mdns = bytes.fromhex("000084000000000100000000") + b"\x03plc\x05local\x00" + bytes.fromhex("00018001000000780004") \
        + bytes([10, 10, 0, 9])
    out.append(bytes([AUX_KINDS.index("mdns") << 1 | 1]) + mdns)
    return out


def tls_target(data: bytes):
    from otwatch.parsers import tls
    if not data:
        return 0
    side = data[0] & 1
    ev = (tls.parse_server_hello if side else tls.parse_client_hello)(data[1:])
    if ev is not None:
        from otwatch.sensor.jsonout import dumps
        dumps(ev)
    return 1


def tls_seeds() -> list[bytes]:
    import fuzz_seeds
    return [bytes([side]) + b for side, b in fuzz_seeds.tls_hellos()]


def certs_target(data: bytes):
    from otwatch.parsers.opcua import certs
    s = certs.summarize(data)
    if data and s is None:
        raise Finding("certs.none", "summarize returned None for %d bytes" % len(data))
    if s is not None:
        from otwatch.sensor.jsonout import dumps
        dumps(s)
        certs._summarize.cache_clear()      # the cache would make repeats free and hide memory use
    return 1


def certs_seeds() -> list[bytes]:
    import fuzz_seeds
    return fuzz_seeds.certificates() + fuzz_seeds.opn_certificates()


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------
class Target:
    def __init__(self, name, run, seeds, max_len, timeout, mem_base, mem_per_byte, mutator="bytes"):
        self.name = name
        self.run = run
        self.seeds = seeds
        self.max_len = max_len
        self.timeout = timeout            # seconds per input before it is a "hang" finding
        self.mem_base = mem_base          # tracemalloc peak bound: base + per_byte * len(input)
        self.mem_per_byte = mem_per_byte
        self.mutator = mutator            # which structure-aware mutators apply


def _kernel_seeds(proto):
    def seeds():
        import fuzz_seeds
        out = []
        for i, ops in enumerate(fuzz_seeds.stream_seeds()[proto]):
            out.append(encode_script(ops, config=i % 8))
        return out
    return seeds


TARGETS = {
    "engine": Target("engine", engine_target, lambda: __import__("fuzz_seeds").engine_seeds(), 1 << 16, 20.0,
                     16 << 20, 400, "capture"),
    "modbus": Target("modbus", lambda d, **kw: kernel_target("modbus", d, **kw), _kernel_seeds("modbus"), 1 << 14,
                     10.0, 8 << 20, 400, "script"),
    "mqtt": Target("mqtt", lambda d, **kw: kernel_target("mqtt", d, **kw), _kernel_seeds("mqtt"), 1 << 14, 10.0,
                   8 << 20, 400, "script"),
    "opcua": Target("opcua", lambda d, **kw: kernel_target("opcua", d, **kw), _kernel_seeds("opcua"), 1 << 14,
                    10.0, 8 << 20, 400, "script"),
    "decoders": Target("decoders", lambda d, **kw: decoders_target(d), decoders_seeds, 1 << 13, 10.0, 8 << 20,
                       400, "bytes"),
    "hostnames": Target("hostnames", lambda d, **kw: hostnames_target(d), hostnames_seeds, 1 << 12, 5.0, 2 << 20,
                        200, "bytes"),
    "tls": Target("tls", lambda d, **kw: tls_target(d), tls_seeds, 1 << 13, 5.0, 2 << 20, 200, "bytes"),
    "certs": Target("certs", lambda d, **kw: certs_target(d), certs_seeds, 1 << 13, 5.0, 4 << 20, 200, "der"),
}
