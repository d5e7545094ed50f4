#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/virtqueue_fuzz.cc into fuzz/corpus/virtqueue/.

Layout (see virtqueue_fuzz.cc): 6 control bytes, then guest RAM from address 0:
desc table (16*size), avail ring (6+2*size), used ring (aligned to 4)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "virtqueue")
NEXT, WRITE, INDIRECT = 1, 2, 4


def image(size_log2, descs, heads, avail_idx=None, event_idx=False, extra=(), mem_len=0x800):
    size = 1 << size_log2
    ram = bytearray(mem_len)
    for i, (addr, ln, flags, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, 16 * i, addr, ln, flags, nxt)
    avail = 16 * size
    struct.pack_into("<HH", ram, avail, 0, len(heads) if avail_idx is None else avail_idx)
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, avail + 4 + 2 * i, h)
    for addr, blob in extra:
        ram[addr:addr + len(blob)] = blob
    ctl = bytes([size_log2, 1 if event_idx else 0, 0, 0, 0, 0])
    return ctl + bytes(ram)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        # size 4: one readable then one writable buffer.
        "two_desc": image(2, [(0x400, 16, NEXT, 1), (0x500, 32, WRITE, 0)], [0], extra=[(0x400, b"hello virtqueue!")]),
        # size 1: a single readable descriptor, event_idx on.
        "one_desc_event_idx": image(0, [(0x400, 8, 0, 0)], [0], event_idx=True),
        # size 4: an indirect table of 3 entries at 0x600.
        "indirect": image(2, [(0x600, 48, INDIRECT, 0)], [0],
                          extra=[(0x600, struct.pack("<QIHH", 0x400, 8, NEXT, 1) +
                                  struct.pack("<QIHH", 0x408, 8, NEXT, 2) +
                                  struct.pack("<QIHH", 0x500, 64, WRITE, 0))]),
        # size 4: 0 -> 1 -> 0 loop.
        "loop": image(2, [(0x400, 8, NEXT, 1), (0x400, 8, NEXT, 0)], [0]),
        # size 8: avail idx jumps far ahead of the device.
        "idx_jump": image(3, [(0x400, 8, 0, 0)], [0], avail_idx=0x4000),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
