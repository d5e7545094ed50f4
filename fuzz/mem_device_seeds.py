#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/mem_device_fuzz.cc into fuzz/corpus/mem_device/.

Layout (see mem_device_fuzz.cc): 6 control bytes (queue size log2, flags with
the block size in bits 0-3, requested blocks before each notify, start idx),
then guest RAM from address 0: desc table (16*size), avail ring (6+2*size),
used ring (aligned to 4). Requests and responses live from 0x800 on; the
device's region starts at 16 MiB."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "mem_device")
NEXT, WRITE, INDIRECT = 1, 2, 4
PLUG, UNPLUG, UNPLUG_ALL, STATE = 0, 1, 2, 3
REGION = 16 << 20
EVENT_IDX, TWICE, RESET = 0x10, 0x20, 0x40
BLOCK_2M = 9  # 4 KiB << 9


def req(t, addr=0, nb=0):
    return struct.pack("<HHHHQHHHH", t, 0, 0, 0, addr, nb, 0, 0, 0)


def image(size_log2, requests, flags=BLOCK_2M, first=4, second=0, resp_len=10, mem_len=0x2000, indirect=False):
    """One chain per request: the 24-byte request, then a response buffer."""
    size = 1 << size_log2
    ram = bytearray(mem_len)
    heads = []
    for k, r in enumerate(requests):
        at, resp = 0x800 + 0x40 * k, 0x800 + 0x40 * k + 0x20
        ram[at:at + len(r)] = r
        if indirect:
            table = 0x1800 + 0x20 * k
            struct.pack_into("<QIHH", ram, table, at, len(r), NEXT, 1)
            struct.pack_into("<QIHH", ram, table + 16, resp, resp_len, WRITE, 0)
            struct.pack_into("<QIHH", ram, 16 * k, table, 32, INDIRECT, 0)
            heads.append(k)
        else:
            d = 2 * k
            struct.pack_into("<QIHH", ram, 16 * d, at, len(r), NEXT, d + 1)
            struct.pack_into("<QIHH", ram, 16 * (d + 1), resp, resp_len, WRITE, 0)
            heads.append(d)
    avail = 16 * size
    struct.pack_into("<HH", ram, avail, 0, len(heads))
    for k, h in enumerate(heads):
        struct.pack_into("<H", ram, avail + 4 + 2 * k, h)
    return bytes([size_log2, flags, first, second, 0, 0]) + bytes(ram)


def main():
    os.makedirs(OUT, exist_ok=True)
    mb2 = 2 << 20
    seeds = {
        # size 8, 2 MiB blocks, 4 requested: plug 2, state, unplug 1, state.
        "plug_state_unplug": image(3, [req(PLUG, REGION, 2), req(STATE, REGION, 4), req(UNPLUG, REGION + mb2, 1),
                                       req(STATE, REGION, 1)]),
        # Plug past the requested size (NACK), then within it; unplug all.
        "nack_then_unplug_all": image(3, [req(PLUG, REGION, 3), req(PLUG, REGION, 2), req(UNPLUG_ALL)], first=2),
        # Every kind of bad request: misaligned, below, past the end, no
        # blocks, 0xffff blocks, near 2^64, unknown type, a short request.
        "bad_requests": image(4, [req(PLUG, REGION + 4096, 1), req(PLUG, REGION - mb2, 1),
                                  req(PLUG, REGION + (8 << 20), 1), req(STATE, REGION, 0),
                                  req(UNPLUG, REGION, 0xffff), req(PLUG, (1 << 64) - mb2, 1), req(9, REGION, 1),
                                  req(PLUG, REGION, 1)[:16]]),
        # 4 KiB blocks, event_idx, twice with a reset between and a smaller
        # request the second time.
        "small_blocks_reset": image(2, [req(PLUG, REGION, 16), req(UNPLUG, REGION + 4096, 3)],
                                    flags=0 | EVENT_IDX | TWICE | RESET, first=20, second=8),
        # Through indirect tables; a response buffer one byte short.
        "indirect": image(2, [req(PLUG, REGION, 1), req(STATE, REGION, 2)], indirect=True),
        "short_response": image(2, [req(PLUG, REGION, 1)], resp_len=9),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
