#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/blk_device_fuzz.cc into fuzz/corpus/blk_device/.

Layout (see blk_device_fuzz.cc): 4 control bytes (queue size log2, flags, start idx),
then guest RAM from address 0: desc table (16*size), avail ring (6+2*size),
used ring (aligned to 4). Requests and buffers live from 0x400 on."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "blk_device")
NEXT, WRITE, INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def hdr(t, sector):
    return struct.pack("<IIQ", t, 0, sector)


def image(size_log2, chains, flags=0, mem_len=0x2000, extra=()):
    """chains: lists of (addr, len, write) buffers; descriptors are numbered in order."""
    size = 1 << size_log2
    ram = bytearray(mem_len)
    heads, i = [], 0
    for chain in chains:
        heads.append(i)
        for j, (addr, ln, wr) in enumerate(chain):
            last = j == len(chain) - 1
            struct.pack_into("<QIHH", ram, 16 * i, addr, ln, (WRITE if wr else 0) | (0 if last else NEXT), i + 1)
            i += 1
    avail = 16 * size
    struct.pack_into("<HH", ram, avail, 0, len(heads))
    for k, h in enumerate(heads):
        struct.pack_into("<H", ram, avail + 4 + 2 * k, h)
    for addr, blob in extra:
        ram[addr:addr + len(blob)] = blob
    return bytes([size_log2, flags, 0, 0]) + bytes(ram)


def main():
    os.makedirs(OUT, exist_ok=True)
    data = bytes((i * 7) & 0xFF for i in range(1024))
    seeds = {
        # size 4: write 2 sectors at sector 3, then read them back.
        "write_read": image(2, [[(0x400, 16, 0), (0x800, 1024, 0), (0x410, 1, 1)],
                                [(0x420, 16, 0), (0xC00, 1024, 1), (0x430, 1, 1)]],
                            extra=[(0x400, hdr(T_OUT, 3)), (0x420, hdr(T_IN, 3)), (0x800, data)]),
        # size 4, event_idx: GET_ID then FLUSH.
        "get_id_flush": image(2, [[(0x400, 16, 0), (0x800, 20, 1), (0x814, 1, 1)],
                                  [(0x420, 16, 0), (0x430, 1, 1)]], flags=1,
                              extra=[(0x400, hdr(T_GET_ID, 0)), (0x420, hdr(T_FLUSH, 0))]),
        # size 8: discard two ranges, write-zeroes one (unmap flag).
        "discard_write_zeroes": image(3, [[(0x400, 16, 0), (0x500, 32, 0), (0x410, 1, 1)],
                                          [(0x420, 16, 0), (0x520, 16, 0), (0x430, 1, 1)]],
                                      extra=[(0x400, hdr(T_DISCARD, 0)), (0x420, hdr(T_WRITE_ZEROES, 0)),
                                             (0x500, struct.pack("<QII", 1, 4, 0) + struct.pack("<QII", 20, 2, 0)),
                                             (0x520, struct.pack("<QII", 8, 8, 1))]),
        # size 4: a read through an indirect table of 3 entries at 0x600.
        "indirect_read": bytes([2, 0, 0, 0]) + bytes(
            _indirect_ram()),
        # size 16, read-only device: a write (IOERR), an unknown type, a short
        # header, a chain without a status byte, a read past the end.
        "bad_requests": image(4, [[(0x400, 16, 0), (0x800, 512, 0), (0x410, 1, 1)],
                                  [(0x420, 16, 0), (0x430, 1, 1)],
                                  [(0x440, 8, 0), (0x450, 1, 1)],
                                  [(0x460, 16, 0)],
                                  [(0x480, 16, 0), (0xC00, 512, 1), (0x490, 1, 1)]], flags=2,
                              extra=[(0x400, hdr(T_OUT, 0)), (0x420, hdr(99, 0)), (0x440, hdr(T_IN, 0)[:8]),
                                     (0x460, hdr(T_IN, 0)), (0x480, hdr(T_IN, 128))]),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(seeds)} seeds to {OUT}")


def _indirect_ram(mem_len=0x2000):
    ram = bytearray(mem_len)
    struct.pack_into("<QIHH", ram, 0, 0x600, 48, INDIRECT, 0)
    avail = 16 * 4
    struct.pack_into("<HHH", ram, avail, 0, 1, 0)
    struct.pack_into("<QIHH", ram, 0x600, 0x400, 16, NEXT, 1)
    struct.pack_into("<QIHH", ram, 0x610, 0x800, 512, NEXT | WRITE, 2)
    struct.pack_into("<QIHH", ram, 0x620, 0x410, 1, WRITE, 0)
    ram[0x400:0x410] = hdr(T_IN, 5)
    return ram


if __name__ == "__main__":
    main()
