#!/usr/bin/env python3
"""Host end of the outer VM's command channel (QEMU's second serial port as a
Unix socket). One client at a time: a lock file serializes ctest's parallel
cases.

  channel.py SOCKET wait-ready SECONDS
  channel.py SOCKET run CASE SECONDS [ARGS...]
                                         prints the case's output, exits with its status
                                         (ARGS: words for the case script, no spaces inside one)
  channel.py SOCKET poweroff
"""
import fcntl
import os
import socket
import sys
import time


def connect(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_lines(sock, deadline):
    buf = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("outer VM closed the channel")
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode(errors="replace").rstrip("\r")


def main():
    path, verb = sys.argv[1], sys.argv[2]
    lock = open(path + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if verb == "wait-ready":
        deadline = time.monotonic() + float(sys.argv[3])
        sock = connect(path, deadline)
        try:
            for line in read_lines(sock, deadline):
                if line.startswith("READY"):
                    return 0
                if line.startswith("NOKVM"):
                    print("outer VM has no /dev/kvm: " + line[6:])
                    return 3
        except TimeoutError:
            print("outer VM did not come up within %s s" % sys.argv[3])
            return 2
    if verb == "run":
        case, seconds = sys.argv[3], float(sys.argv[4])
        deadline = time.monotonic() + seconds + 30
        sock = connect(path, deadline)
        run_id = "%d-%d" % (os.getpid(), int(time.time()))
        args = "".join(" " + a for a in sys.argv[5:])
        sock.sendall(("RUN %s %s %d%s\n" % (run_id, case, int(seconds), args)).encode())
        inside = False
        try:
            for line in read_lines(sock, deadline):
                if line == "BEGIN " + run_id:
                    inside = True
                elif line.startswith("END %s " % run_id):
                    status = int(line.split()[2])
                    return status
                elif inside:
                    print(line, flush=True)
        except TimeoutError:
            print("e2e: no answer from the outer VM within %d s" % (seconds + 30))
            return 124
        except ConnectionError:
            print("e2e: the outer VM went down during the case")
            return 125
    if verb == "poweroff":
        sock = connect(path, time.monotonic() + 5)
        sock.sendall(b"POWEROFF 0 none 0\n")
        try:
            for line in read_lines(sock, time.monotonic() + 30):
                if line == "BYE":
                    return 0
        except (TimeoutError, ConnectionError):
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
