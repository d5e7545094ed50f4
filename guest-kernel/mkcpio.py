#!/usr/bin/env python3
"""Writes a gzip-compressed newc cpio archive from a description, reproducibly:
every entry owned by root, mtime 0, inode numbers in order, no host metadata,
gzip without a name or time stamp. The same description and files give the
same bytes on any machine.

Description lines (as Linux's usr/gen_init_cpio takes them):
  dir   PATH MODE
  file  PATH SOURCE MODE
  slink PATH TARGET MODE
  nod   PATH MODE c|b MAJOR MINOR
Usage: mkcpio.py OUTPUT < DESCRIPTION
"""
import gzip
import stat
import sys


def header(ino, mode, nlink, size, rdev_major=0, rdev_minor=0, name=b""):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08x" % f for f in fields)


def pad4(n):
    return (4 - n % 4) % 4


def entry(ino, mode, data=b"", nlink=1, rdev=(0, 0), path=""):
    name = path.lstrip("/").encode()
    out = header(ino, mode, nlink, len(data), rdev[0], rdev[1], name) + name + b"\0"
    out += b"\0" * pad4(len(out))
    out += data + b"\0" * pad4(len(data))
    return out


def main():
    out_path = sys.argv[1]
    archive = bytearray()
    ino = 1
    for lineno, line in enumerate(sys.stdin, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        kind = parts[0]
        if kind == "dir":
            archive += entry(ino, stat.S_IFDIR | int(parts[2], 8), nlink=2, path=parts[1])
        elif kind == "file":
            with open(parts[2], "rb") as f:
                data = f.read()
            archive += entry(ino, stat.S_IFREG | int(parts[3], 8), data, path=parts[1])
        elif kind == "slink":
            archive += entry(ino, stat.S_IFLNK | int(parts[3], 8), parts[2].encode(), path=parts[1])
        elif kind == "nod":
            kind_bits = stat.S_IFCHR if parts[3] == "c" else stat.S_IFBLK
            archive += entry(ino, kind_bits | int(parts[2], 8), rdev=(int(parts[4]), int(parts[5])), path=parts[1])
        else:
            sys.exit(f"mkcpio: line {lineno}: unknown entry type {kind!r}")
        ino += 1
    archive += entry(0, 0, path="TRAILER!!!")
    with open(out_path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(bytes(archive))


if __name__ == "__main__":
    main()
