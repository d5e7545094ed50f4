#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/passthrough_fs_fuzz.cc into fuzz/corpus/passthrough_fs/.

Layout (see passthrough_fs_fuzz.cc): 1 control byte (bit 0: INIT first), then records
u16 in_len, u16 out_len, u8 split, in bytes (a raw FUSE request). The share
holds a (file), d/ (with d/b), l -> ../canary, abs -> /.../canary, up -> ..
Each input gets a fresh server: nodeids are handed out from 2, handles from 1,
in the order the requests below make them."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "passthrough_fs")

(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ,
 WRITE, STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, INIT, OPENDIR, READDIR,
 RELEASEDIR, FSYNCDIR, GETLK, SETLK, SETLKW, ACCESS, CREATE, INTERRUPT, DESTROY, BATCH_FORGET, FALLOCATE,
 READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE, SYNCFS) = (
    1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 38, 42, 43, 44, 45, 46, 47, 50)
ROOT = 1
O_RDONLY, O_RDWR, O_CREAT, O_TRUNC = 0, 2, 0o100, 0o1000
S_IFREG, S_IFIFO = 0o100000, 0o10000
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
FATTR_MODE, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME, FATTR_MTIME_NOW = 1, 8, 16, 32, 256
OFFSET_MAX = (1 << 63) - 1


class Seq:
    def __init__(self, init=True):
        self.unique = 0
        self.recs = []
        self.ctl = 1 if init else 0

    def req(self, op, nodeid, args=b"", out=4096, split=0, uid=0, gid=0):
        self.unique += 1
        body = struct.pack("<IIQQIIIHH", 40 + len(args), op, self.unique, nodeid, uid, gid, 1, 0, 0) + args
        self.recs.append(struct.pack("<HHB", len(body), out, split) + body)
        return self

    def blob(self, ctl_extra=0):
        return bytes([self.ctl | ctl_extra]) + b"".join(self.recs)


def name(s):
    return s.encode() + b"\0"


def init_in(minor=38, flags=0xFFFFFFFF):
    return struct.pack("<IIII", 7, minor, 1 << 17, flags) + bytes(48)


def open_in(flags):
    return struct.pack("<II", flags, 0)


def read_in(fh, off, size):
    return struct.pack("<QQIIQII", fh, off, size, 0, 0, 0, 0)


def write_in(fh, off, data):
    return struct.pack("<QQIIQII", fh, off, len(data), 0, 0, 0, 0) + data


def release_in(fh, flags=0):
    return struct.pack("<QIIQ", fh, 0, flags, 0)


def create_in(flags, mode):
    return struct.pack("<IIII", flags, S_IFREG | mode, 0o22, 0)


def lk_in(fh, typ, start, end, flags=0):
    return struct.pack("<QQQQIIII", fh, fh, start, end, typ, 1, flags, 0)


def setattr_in(valid, size=0, mode=0, atime=0, mtime=0, fh=0):
    return struct.pack("<IIQQQQQQIIIIIIII", valid, 0, fh, size, 0, atime, mtime, 0, 0, 0, 0, mode, 0, 0, 0, 0)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}

    # Explicit INIT, then look up a and stat it (nodeid 2).
    s = Seq(init=False).req(INIT, 0, init_in()).req(LOOKUP, ROOT, name("a")).req(GETATTR, 2, bytes(16))
    s.req(GETATTR, ROOT, bytes(16)).req(FORGET, 2, struct.pack("<Q", 1)).req(GETATTR, 2, bytes(16))
    seeds["init_lookup_getattr"] = s.blob()

    # a = nodeid 2, fh 1: read, write, read back, flush, fsync, release.
    s = Seq().req(LOOKUP, ROOT, name("a")).req(OPEN, 2, open_in(O_RDWR)).req(READ, 2, read_in(1, 0, 4096))
    s.req(WRITE, 2, write_in(1, 6, b"fuzzer")).req(READ, 2, read_in(1, 0, 64), split=0x4D)
    s.req(FLUSH, 2, struct.pack("<QIIQ", 1, 0, 0, 0)).req(FSYNC, 2, struct.pack("<QII", 1, 1, 0))
    s.req(RELEASE, 2, release_in(1)).req(READ, 2, read_in(1, 0, 10))
    seeds["open_read_write_release"] = s.blob()

    # Create n (nodeid 2, fh 1), write it; list the root (fh 2) with and without plus.
    s = Seq().req(CREATE, ROOT, create_in(O_RDWR | O_CREAT, 0o644) + name("n"))
    s.req(WRITE, 2, write_in(1, 0, bytes(range(256)) * 4), split=0x66)
    s.req(OPENDIR, ROOT, open_in(O_RDONLY)).req(READDIRPLUS, ROOT, read_in(2, 0, 4096))
    s.req(READDIR, ROOT, read_in(2, 0, 200)).req(READDIR, ROOT, read_in(2, 3, 4096), split=0x93)
    s.req(RELEASEDIR, ROOT, release_in(2)).req(FSYNCDIR, ROOT, struct.pack("<QII", 2, 0, 0))
    s.req(RELEASE, 2, release_in(1))
    seeds["create_write_readdirplus"] = s.blob(0x30)

    # Escapes: symlinks out of the share, "..", names with '/', walking into a link.
    s = Seq().req(LOOKUP, ROOT, name("l")).req(READLINK, 2).req(OPEN, 2, open_in(O_RDONLY))
    s.req(LOOKUP, ROOT, name("up")).req(LOOKUP, 3, name("canary")).req(LOOKUP, ROOT, name(".."))
    s.req(LOOKUP, ROOT, name("d/../../canary")).req(LOOKUP, ROOT, name("abs")).req(GETATTR, 4, bytes(16))
    s.req(CREATE, ROOT, create_in(O_RDWR | O_CREAT | O_TRUNC, 0o644) + name("abs"))
    s.req(SETATTR, 4, setattr_in(FATTR_SIZE)).req(OPENDIR, 3, open_in(O_RDONLY))
    s.req(MKDIR, 3, struct.pack("<II", 0o755, 0) + name("x"))
    s.req(RENAME2, ROOT, struct.pack("<QII", ROOT, 2, 0) + name("d") + name("up"))
    s.req(LOOKUP, ROOT, name("d")).req(LOOKUP, 5, name("b")).req(OPEN, 6, open_in(O_RDWR))
    s.req(RMDIR, ROOT, name("up")).req(WRITE, 6, write_in(1, 0, b"after"))
    seeds["escapes"] = s.blob()

    # Namespace: mkdir, symlink, mknod, link, rename (both opcodes), unlink, rmdir.
    s = Seq().req(MKDIR, ROOT, struct.pack("<II", 0o755, 0o22) + name("m"))
    s.req(SYMLINK, 2, name("s") + name("../a")).req(MKNOD, 2, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0, 0) + name("p"))
    s.req(LOOKUP, ROOT, name("a")).req(LINK, 2, struct.pack("<Q", 5) + name("hard"))
    s.req(RENAME, 2, struct.pack("<Q", ROOT) + name("hard") + name("moved"))
    s.req(RENAME2, ROOT, struct.pack("<QII", ROOT, 1, 0) + name("moved") + name("a"))
    s.req(UNLINK, 2, name("s")).req(UNLINK, 2, name("p")).req(RMDIR, ROOT, name("m"))
    s.req(BATCH_FORGET, 0, struct.pack("<II", 2, 0) + struct.pack("<QQ", 2, 1) + struct.pack("<QQ", 5, 2))
    seeds["namespace"] = s.blob()

    # xattrs and locks on a (nodeid 2, fh 1 and 2).
    s = Seq().req(LOOKUP, ROOT, name("a"))
    s.req(SETXATTR, 2, struct.pack("<II", 5, 0) + name("user.fuzz") + b"value")
    s.req(GETXATTR, 2, struct.pack("<II", 0, 0) + name("user.fuzz"))
    s.req(GETXATTR, 2, struct.pack("<II", 64, 0) + name("user.fuzz"))
    s.req(LISTXATTR, 2, struct.pack("<II", 64, 0)).req(REMOVEXATTR, 2, name("user.fuzz"))
    s.req(OPEN, 2, open_in(O_RDWR)).req(OPEN, 2, open_in(O_RDWR))
    s.req(SETLK, 2, lk_in(1, F_WRLCK, 0, 99)).req(GETLK, 2, lk_in(2, F_RDLCK, 0, OFFSET_MAX))
    s.req(SETLKW, 2, lk_in(2, F_RDLCK, 0, 10)).req(SETLK, 2, lk_in(1, F_UNLCK, 0, OFFSET_MAX))
    s.req(SETLK, 2, lk_in(2, F_WRLCK, 0, OFFSET_MAX, 1)).req(SETLKW, 2, lk_in(1, F_RDLCK, 0, OFFSET_MAX, 1))
    s.req(RELEASE, 2, release_in(2, 2))
    seeds["xattr_locks"] = s.blob()

    # Everything else: statfs, access, setattr, fallocate, lseek, copy, syncfs, and the odd ones.
    s = Seq().req(STATFS, ROOT).req(LOOKUP, ROOT, name("a")).req(ACCESS, 2, struct.pack("<II", 6, 0), uid=1000)
    s.req(SETATTR, 2, setattr_in(FATTR_MODE | FATTR_ATIME | FATTR_MTIME_NOW | FATTR_MTIME, mode=0o600, atime=5))
    s.req(OPEN, 2, open_in(O_RDWR)).req(FALLOCATE, 2, struct.pack("<QQQII", 1, 8192, 4096, 0, 0))
    s.req(LSEEK, 2, struct.pack("<QQII", 1, 0, 3, 0)).req(LSEEK, 2, struct.pack("<QQII", 1, 0, 4, 0))
    s.req(CREATE, ROOT, create_in(O_RDWR | O_CREAT, 0o600) + name("c"))
    s.req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 0, 3, 2, 100, 4096, 0))
    s.req(SYNCFS, ROOT, bytes(8)).req(INTERRUPT, 0, struct.pack("<Q", 3)).req(4096, ROOT, bytes(16))
    s.req(DESTROY, 0).req(GETATTR, ROOT, bytes(16))
    seeds["misc"] = s.blob(0x04)

    # Replies that don't fit, truncated requests, odd splits; read-only mode.
    s = Seq().req(LOOKUP, ROOT, name("a"), out=20).req(LOOKUP, ROOT, name("a"), out=15)
    s.req(LOOKUP, ROOT, b"a", split=0xFF).req(OPEN, 2, b"\x02")
    s.req(LOOKUP, ROOT, name("a"), split=0x37).req(OPEN, 2, open_in(O_RDWR))
    s.req(OPEN, 2, open_in(O_RDONLY)).req(READ, 2, read_in(1, 0, 1 << 20), out=40, split=0xA7)
    s.req(WRITE, 2, write_in(1, 0, b"x")[:-1] + b"")
    s.recs.append(struct.pack("<HHB", 30, 100, 1) + bytes(30))
    seeds["malformed_read_only"] = s.blob(0x02)

    for n, blob in seeds.items():
        with open(os.path.join(OUT, n), "wb") as f:
            f.write(blob)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
