"""The v5 property reader (decode._Reader.properties, inlined for speed) against a plain reading of
spec.PROPERTIES through the bounds-checked _Reader methods: the same properties, user properties and
position for any block, and the same error for any truncated or corrupted one."""
from __future__ import annotations

import importlib
import importlib.util
import pathlib

from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.parsers.mqtt import spec

D = importlib.import_module("otwatch.parsers.mqtt.decode")


def reference(r, what: str):
    n = r.varint(f"{what} property length")
    sub = D._Reader(r.buf, r.pos, r.pos + n)
    if sub.end > r.end:
        raise D._Malformed(f"{what} properties overrun the packet")
    r.pos = sub.end
    props, users = [], []
    while sub.left():
        pid = sub.u8("property id")
        entry = spec.PROPERTIES.get(pid)
        if entry is None:
            raise D._Malformed(f"{what}: unknown property id 0x{pid:02x}")
        name, ptype = entry
        if ptype == spec.PropType.BYTE:
            value = sub.u8(name)
        elif ptype == spec.PropType.TWO_BYTE_INT:
            value = sub.u16(name)
        elif ptype == spec.PropType.FOUR_BYTE_INT:
            value = sub.u32(name)
        elif ptype == spec.PropType.VARINT:
            value = sub.varint(name)
        elif ptype == spec.PropType.UTF8:
            value = sub.string(name)
        elif ptype == spec.PropType.UTF8_PAIR:
            users.append((sub.string(name), sub.string(name)))
            continue
        elif pid == spec.PROP_AUTHENTICATION_DATA:
            props.append(("authentication_data_length", sub.skip_binary(name)))
            continue
        else:
            value = sub.binary(name)
        props.append((name, value))
    return tuple(props), tuple(users)


_b = importlib.util.spec_from_file_location("otwatch_test_mqtt_build", pathlib.Path(__file__).with_name("mqtt_build.py"))
_B = importlib.util.module_from_spec(_b)
_b.loader.exec_module(_B)
varint = _B.varint
blob = _B.s          # a two-byte length and the bytes


@st.composite
def property_block(draw):
    body = bytearray()
    for _ in range(draw(st.integers(0, 6))):
        pid = draw(st.sampled_from(sorted(spec.PROPERTIES) + [0x00, 0x7F]))
        body.append(pid)
        ptype = spec.PROPERTIES.get(pid, (None, spec.PropType.BYTE))[1]
        if ptype == spec.PropType.BYTE:
            body += draw(st.binary(min_size=1, max_size=1))
        elif ptype == spec.PropType.TWO_BYTE_INT:
            body += draw(st.binary(min_size=2, max_size=2))
        elif ptype == spec.PropType.FOUR_BYTE_INT:
            body += draw(st.binary(min_size=4, max_size=4))
        elif ptype == spec.PropType.VARINT:
            body += varint(draw(st.integers(0, 2 ** 28 - 1)))
        elif ptype == spec.PropType.UTF8_PAIR:
            body += blob(draw(st.text(max_size=8)).encode()) + blob(draw(st.binary(max_size=8)))
        else:
            body += blob(draw(st.binary(max_size=12)))
    declared = len(body)
    if body and draw(st.booleans()):   # a declared length that ends inside a property
        declared = draw(st.integers(0, len(body)))
    block = varint(declared) + bytes(body) + draw(st.binary(max_size=3))
    if draw(st.booleans()):      # corrupt: cut it short or change a byte
        if draw(st.booleans()) and block:
            block = block[:draw(st.integers(0, len(block) - 1))]
        elif block:
            i = draw(st.integers(0, len(block) - 1))
            block = block[:i] + bytes([draw(st.integers(0, 255))]) + block[i + 1:]
    return block


def run(fn, raw: bytes):
    r = D._Reader(raw, 0, len(raw))
    try:
        return ("ok", fn(r, "PUBLISH"), r.pos)
    except D._Malformed as exc:
        return ("malformed", str(exc))


@settings(max_examples=800)
@given(property_block())
def test_inlined_properties_match_the_reader_methods(raw):
    assert run(lambda r, w: r.properties(w), raw) == run(reference, raw)


def test_every_property_type_once():
    body = bytearray()
    for pid, (_name, ptype) in sorted(spec.PROPERTIES.items()):
        body.append(pid)
        body += {spec.PropType.BYTE: b"\x01", spec.PropType.TWO_BYTE_INT: b"\x01\x02",
                 spec.PropType.FOUR_BYTE_INT: b"\x00\x00\x01\x00", spec.PropType.VARINT: b"\x80\x01",
                 spec.PropType.UTF8_PAIR: blob(b"k") + blob(b"v")}.get(ptype, blob(b"\xc3\xa9x"))
    raw = varint(len(body)) + bytes(body)
    got = run(lambda r, w: r.properties(w), raw)
    assert got == run(reference, raw)
    assert got[0] == "ok" and ("authentication_data_length", 3) in got[1][0] and got[1][1] == (("k", "v"),)
