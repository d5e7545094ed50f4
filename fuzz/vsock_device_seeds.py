#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/vsock_device_fuzz.cc into fuzz/corpus/vsock_device/.

Records (see vsock_device_fuzz.cc): kind byte, then kind-specific bytes."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "vsock_device")
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)


def pkt(src_port, dst_port, op, payload=b"", flags=0, typ=1, ln=None, kind=0, cids=(3, 2)):
    hdr = struct.pack("<QQIIIHHIII", cids[0], cids[1], src_port, dst_port,
                      len(payload) if ln is None else ln, typ, op, flags, 65536, 0)
    assert len(hdr) == 44
    return bytes([kind]) + hdr + bytes([len(payload)]) + payload


def rx(n=1, size=64):  # size*4 bytes each
    return bytes([1, size]) * n


def host_write(sel, n):
    return bytes([2, sel, n])


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        # Host connect (local port 1024 -> guest 5000), guest accepts, data both ways, close.
        "host_connect": rx(4) + pkt(5000, 1024, RESPONSE) + host_write(0, 40) + rx(2) +
                        pkt(5000, 1024, RW, b"hello host") + pkt(5000, 1024, CREDIT_REQUEST) +
                        bytes([3, 0]) + rx(2) + pkt(5000, 1024, RST),
        # Guest connects to the listener on port 80, data, shutdown.
        "guest_connect": rx(4) + pkt(7000, 80, REQUEST) + pkt(7000, 80, RW, b"GET /") +
                         host_write(1, 100) + rx(2, 8) + pkt(7000, 80, SHUTDOWN, flags=3),
        # Bad headers: unknown op, huge len, bad type, wrong CID, stray packets.
        "bad_headers": rx(8) + pkt(5000, 1024, 99) + pkt(6000, 7000, RW, b"x", ln=100000) +
                       pkt(6001, 80, REQUEST, typ=2) + pkt(5000, 1024, RW, b"y", kind=0x80, cids=(9, 2)) +
                       pkt(1, 2, RW, b"stray") + bytes([6]),
        # Transport reset with an event buffer, then scribbling on the rx avail ring.
        "reset_scribble": rx(2) + bytes([5, 4]) + bytes([7, 0x02, 0x01, 4, 0xff, 0xff, 0x07, 0x00]) + rx(1) +
                          host_write(0, 255) + bytes([6]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
