#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/ttrpc_frame_fuzz.cc into fuzz/corpus/ttrpc_frame/.

Layout (see ttrpc_frame_fuzz.cc): 1 byte choosing the chunk size the decoder
is fed in, then the bytes a peer sends: ttrpc frames (10-byte header: length,
stream id, both big-endian, type, flags), each request's payload a ttrpc
Request message (service 1, method 2, payload 3, timeout_nano 4, metadata 5).
The fuzz target's server answers skiff.fuzz.Echo/Echo and /Fail.
unknown_service_not_utf8 in that folder is not written here: the fuzzer found
it (a status quoting a non-UTF-8 service name no C++ client could parse)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ttrpc_frame")
REQUEST, RESPONSE, DATA = 1, 2, 3
LIMIT = 4096  # the target's max_message


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def request(service, method, payload=b"", timeout=0, metadata=()):
    m = field(1, service) + field(2, method) + field(3, payload)
    if timeout:
        m += varint(4 << 3) + varint(timeout)
    for k, v in metadata:
        m += field(5, field(1, k) + field(2, v))
    return m


def frame(stream, kind, payload, flags=0, length=None):
    return struct.pack(">IIBB", len(payload) if length is None else length, stream, kind, flags) + payload


def echo(stream, payload=b"hi", **kw):
    return frame(stream, REQUEST, request(b"skiff.fuzz.Echo", b"Echo", payload, **kw))


SEEDS = {
    "echo": b"\x00" + echo(1),
    "echo_bytewise": b"\x00" + echo(1, b"x" * 100) + echo(3, b""),  # chunk size 1
    "pipelined": b"\x07" + b"".join(echo(i, bytes([i]) * i) for i in range(1, 40, 2)),
    "fail_and_unknown": b"\x10" + frame(1, REQUEST, request(b"skiff.fuzz.Echo", b"Fail"))
    + frame(3, REQUEST, request(b"skiff.fuzz.Echo", b"Nope"))
    + frame(5, REQUEST, request(b"containerd.task.v2.Task", b"State")),
    "metadata_timeout": b"\x03" + echo(1, timeout=1_000_000_000, metadata=[(b"containerd-namespace-ttrpc", b"k8s.io")])
    + echo(3, timeout=-1 & ((1 << 64) - 1)),
    "even_stream": b"\x00" + echo(2) + echo(0),
    "bad_request_payload": b"\x00" + frame(1, REQUEST, b"\xff\xff\xff\xff\x0f") + echo(3),
    "oversized_then_echo": b"\x20" + frame(1, REQUEST, b"z" * (LIMIT + 1)) + echo(3),
    "oversized_truncated": b"\x20" + frame(1, REQUEST, b"z" * 100, length=0xFFFFFFF0),
    "data_and_response": b"\x05" + frame(1, DATA, b"d", flags=4) + frame(3, RESPONSE, b"") + echo(5),
    "truncated_header": b"\x00" + echo(1)[:6],
    "truncated_payload": b"\x02" + echo(1, b"abcdef" * 10)[:-7],
    "not_ttrpc_http": b"\x40" + b"GET / HTTP/1.1\r\nHost: shim\r\n\r\n",
    "not_ttrpc_after_echo": b"\x00" + echo(1) + struct.pack(">IIBB", 0, 3, 9, 0),
    "empty": b"\x00",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
