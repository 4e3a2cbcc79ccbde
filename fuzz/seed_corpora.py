#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) and the regression inputs
(fuzz/regressions/<target>/) from the golden frames of src/wire/tests.rs
(`golden_bytes_pin_the_format`) and the crash inputs of issue 8. Run from anywhere; it only
(re)writes files named seed-* and the regressions listed here."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# Whole frames (4-byte big-endian length, then the body), one per `Frame` variant in order.
GOLDEN = [
    ("hello", "0000001700011009090909090909090909090909090909016e0001"),
    ("refused", "00000003010178"),
    ("service-available", "0000002a0210010101010101010101010101010101010173012a1009090909090909090909090909090909010167"),
    ("service-withdrawn", "00000012031001010101010101010101010101010101"),
    ("group-joined", "000000140410010101010101010101010101010101010167"),
    ("group-left", "000000140510010101010101010101010101010101010167"),
    ("subscription-requested", "000000250610010101010101010101010101010101011002020202020202020202020202020202012a"),
    ("subscription-withdrawn", "000000250710010101010101010101010101010101011002020202020202020202020202020202012a"),
    ("report", "0000002f081001010101010101010101010101010101017400027538010701100202020202020202020202020202020201012a"),
    ("targeted-report", "0000002d091001010101010101010101010101010101017400027538010701100202020202020202020202020202020200"),
    ("publisher-notice", "000000240a1001010101010101010101010101010101100202020202020202020202020202020201"),
    ("request", "0000002f0bfb2c0110020202020202020202020202020202021001010101010101010101010101010101016d00027538010701"),
    ("response", "0000002c0cfb2c0110020202020202020202020202020202020002753801071001010101010101010101010101010101"),
    ("failure", "0000002c0dfb2c011002020202020202020202020202020202390164016f001001010101010101010101010101010101"),
    ("heartbeat", "000000010e"),
    ("goodbye", "000000050f03627965"),
    ("challenge", "00000006100407070707"),
    ("proof", "00000006110408080808"),
    ("subscription-requested-as", "000000261210010101010101010101010101010101011002020202020202020202020202020202012a01"),
    ("subscription-conflated", "000000261310010101010101010101010101010101011002020202020202020202020202020202012a00"),
    ("conflated-report", "00000032141001010101010101010101010101010101017400027538010701100202020202020202020202020202020201012afb2c01"),
]

# Issue 8, item 1: whole frames that crashed every netsvc process before any handshake.
CRASHES = [
    ("goodbye-huge-reason", "0000000a0ffd0000000000000002"),
    ("string-capacity-overflow", "0000000f0ffdffffff0f0700ffb30800ffffff0f0f0fff00"),
    ("refused-huge-reason", "0000000f000000000a01fd0000000000040000"),
]


def frame(body):
    return struct.pack(">I", len(body)) + body


def varint(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 1 << 32:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def zigzag(n):
    return varint((n << 1) if n >= 0 else ((-n) << 1) - 1)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def agent(k):
    return b"\x10" + bytes([k]) * 16


def write(target, kind, name, data):
    folder = os.path.join(HERE, kind, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


golden = [(name, bytes.fromhex(h)) for name, h in GOLDEN]
every_frame = b"".join(f for _, f in golden)

# frame_body: each golden body.
for i, (name, f) in enumerate(golden):
    write("frame_body", "corpus", f"seed-{i:02}-{name}", f[4:])

# stream and chunks: a step byte, then frames.
for target in ("stream", "chunks"):
    for i, (name, f) in enumerate(golden):
        write(target, "corpus", f"seed-{i:02}-{name}", b"\xff" + f)
    for step in (1, 3, 7, 64, 255):
        write(target, "corpus", f"seed-all-step-{step}", bytes([step]) + every_frame)
    write(target, "corpus", "seed-over-cap", b"\x10" + frame(b"\x0f" + string("x" * 5000)) + golden[14][1])

# payload: bincode encodings of the types `check_payload` decodes into.
record = (
    varint(7) + string("n") + varint(1) + string("t")
    + b"\x01" + varint(0) + struct.pack("<dd", 1.0, 2.0)  # Some(Shape::Point { x, y })
    + varint(1) + string("k") + string(b"\x01\x02")  # values: {"k": [1, 2]}
    + varint(300)  # wide
)
payloads = {
    "i64-pair": zigzag(6) + zigzag(7),
    "i64-pair-extremes": zigzag(-(1 << 63)) + zigzag((1 << 63) - 1),
    "string": string("hello"),
    "strings": varint(2) + string("a") + string("bc"),
    "u64s": varint(4) + varint(1) + varint(300) + varint(70000) + varint(1 << 40),
    "string-bytes-bool": string("hi") + string(b"\x01\x02\x03") + b"\x01",
    "record": record,
    "records": varint(2) + record + record.replace(b"\x01\x00" + struct.pack("<dd", 1.0, 2.0), b"\x01\x01" + string("l")),
    "record-empty-shape": varint(1) + string("") + varint(0) + b"\x01\x02" + varint(0) + varint(0),
    "json": b'[6, 7, "x", {"a": [1.5, null]}]',
}
for name, data in payloads.items():
    write("payload", "corpus", f"seed-{name}", data)

# session, raw form (mode 0: after a Hello; agent(k) stands for live identities, see
# fuzz/session.rs): each golden frame (agent 1 is the calculator's identity), then sessions
# that do something: announce agent 2, call the calculator, subscribe to news, publish as
# "feed" to the listener.
announce = lambda k, name: frame(b"\x02" + agent(k) + string(name) + string("*") + agent(9) + varint(0))
multiply = frame(
    b"\x0b" + varint(300) + agent(2) + agent(1) + string("multiply")
    + varint(0) + string("(i64, i64)") + string(zigzag(6) + zigzag(7)) + varint(0)
)
echo = frame(
    b"\x0b" + varint(301) + agent(2) + agent(1) + string("echo")
    + varint(1) + string("(String, Vec<u8>)") + string(b'["hi", [1, 2]]') + varint(1)
)
subscribe = frame(b"\x06" + agent(4) + agent(2) + string("news.*"))
subscribe_json = frame(b"\x12" + agent(4) + agent(2) + string("news.*") + varint(1))
feed_report = frame(
    b"\x08" + agent(3) + string("feed.x") + varint(0) + string("alloc::string::String") + string(string("hey"))
    + varint(1) + agent(5) + b"\x01" + string("*")
)
for i, (name, f) in enumerate(golden):
    write("session", "corpus", f"seed-{i:02}-{name}", b"\x00" + f)
write("session", "corpus", "seed-call", b"\x00" + announce(2, "") + multiply + echo)
write("session", "corpus", "seed-subscribe", b"\x00" + announce(2, "") + subscribe)
write("session", "corpus", "seed-subscribe-json", b"\x00" + announce(2, "") + subscribe_json + subscribe)
write("session", "corpus", "seed-feed", b"\x00" + announce(3, "feed") + feed_report + feed_report)
write("session", "corpus", "seed-everything", b"\x00" + announce(2, "") + every_frame[len(golden[0][1]):])
write("session", "corpus", "seed-before-hello", b"\x04" + golden[2][1])
# Operations form (any other mode): a few starts for the fuzzer to grow from.
write("session", "corpus", "seed-ops-announce-call", bytes([1, 0, 3, 4, 0, 0, 0, 9, 3, 3, 0, 0, 0, 0, 0, 0]))
write("session", "corpus", "seed-ops-subscribe", bytes([1, 0, 3, 4, 0, 0, 0, 4, 1, 3, 1, 19, 3]))
write("session", "corpus", "seed-ops-raw", bytes([2, 16, 5, 14, 0, 0, 0, 0, 18, 2, 0, 0, 0xff, 1, 0, 0x10]))

# Regressions: the crash inputs, in each target's form.
for name, h in CRASHES:
    whole = bytes.fromhex(h)
    body = whole[4:]
    write("frame_body", "regressions", name, body)
    announced = struct.unpack(">I", whole[:4])[0]
    if announced != len(body):
        write("frame_body", "regressions", f"{name}-announced-body", body[:announced])
    write("payload", "regressions", name, body)
    write("payload", "regressions", f"{name}-fields", body[1:])
    for target in ("stream", "chunks"):
        write(target, "regressions", name, b"\xff" + whole)
        write(target, "regressions", f"{name}-step-1", b"\x01" + whole)
    write("session", "regressions", f"{name}-before-hello", b"\x04" + whole)
    write("session", "regressions", f"{name}-after-hello", b"\x00" + whole)
# The Refused frame inside the third input (a whole frame from its sixth byte on).
refused = bytes.fromhex(CRASHES[2][1])[5:]
assert refused[:5] == bytes.fromhex("0000000a01")
write("frame_body", "regressions", "refused-huge-reason-inner", refused[4:])
write("session", "regressions", "refused-huge-reason-inner-before-hello", b"\x04" + refused)
