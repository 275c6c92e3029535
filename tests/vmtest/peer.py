#!/usr/bin/env python3
"""Traffic peers for the interop test, made to start once: under TCG a Python process takes
seconds to start, so the client is a long-lived process that takes commands on stdin.

  peer.py udp-serve ADDR PORT   echo every datagram back to its sender (prints "ready")
  peer.py client                read commands, one per line, answer each with one line:
      tcp ADDR PORT SIZE        download from tests/dataplane/tcp_peer.py serve: "NAME intact|CORRUPT LEN"
      udp ADDR PORT COUNT       COUNT distinct datagrams, one at a time, each sent up to 3 times
                                (2 s apart) until its echo is back: "OK/COUNT echoed"
    errors answer "error: ..."; every command ends within about 30 s.
TCP servers are tests/dataplane/tcp_peer.py (same pattern of octets).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
from tcp_peer import pattern  # noqa: E402


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp_serve(addr, port):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def tcp_fetch(addr, port, size):
    with socket.create_connection((addr, port), timeout=10) as c:
        c.settimeout(20)
        buf = bytearray()
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            buf += b
    name, _, body = bytes(buf).partition(b"\n")
    return f"{name.decode(errors='replace')} {'intact' if body == pattern(size) else 'CORRUPT'} {len(body)}"


def udp_ask(addr, port, count):
    with socket.socket(family(addr), socket.SOCK_DGRAM) as s:
        s.connect((addr, port))
        s.settimeout(2.0)
        ok = 0
        for i in range(count):
            msg = f"xpmip {i} ".encode() + os.urandom(64 + 97 * i).hex().encode()
            for _ in range(3):
                try:
                    s.send(msg)
                    while s.recv(65535) != msg:  # skip late echoes of earlier tries
                        pass
                    ok += 1
                    break
                except OSError:   # timeout, or an ICMP error reported on the socket
                    continue
    return f"{ok}/{count} echoed"


def client():
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "tcp":
                out = tcp_fetch(args[0], int(args[1]), int(args[2]))
            elif cmd == "udp":
                out = udp_ask(args[0], int(args[1]), int(args[2]))
            else:
                out = f"error: unknown command {cmd}"
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
            out = f"error: {type(e).__name__}: {e}"
        print(out, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "udp-serve":
        udp_serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "client":
        client()
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
