#!/usr/bin/env python3
"""TCP test peer.

  tcp_peer.py serve ADDR PORT NAME SIZE     accept connections; to each send NAME, a newline
                                            and SIZE octets of a deterministic pattern
  tcp_peer.py fetch ADDR PORT SIZE          connect, read everything, print NAME and whether the
                                            SIZE octets arrived intact (exit 1 if not)
  tcp_peer.py send ADDR PORT SIZE           connect and send SIZE octets (for stack-emitted GSO)
  tcp_peer.py sink ADDR PORT                accept one connection, print the octet count received
"""
import hashlib
import socket
import sys


def pattern(size):
    block = hashlib.sha256(b"xpmip").digest() * 2048   # 64 KiB
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(addr, port, name, size):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    print("ready", flush=True)
    data = name.encode() + b"\n" + pattern(size)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(data)
        except OSError:
            pass
        c.close()


def fetch(addr, port, size):
    with socket.create_connection((addr, port), timeout=10) as c:
        buf = bytearray()
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            buf += b
    name, _, body = bytes(buf).partition(b"\n")
    ok = body == pattern(size)
    print(f"{name.decode(errors='replace')} {'intact' if ok else 'CORRUPT'} {len(body)}")
    return 0 if ok else 1


def send(addr, port, size):
    with socket.create_connection((addr, port), timeout=10) as c:
        c.sendall(pattern(size))
    return 0


def sink(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept()
    c.settimeout(10)
    buf = bytearray()
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        buf += b
    print(len(buf), "intact" if bytes(buf) == pattern(len(buf)) else "CORRUPT", flush=True)
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif cmd == "fetch":
        sys.exit(fetch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    elif cmd == "send":
        sys.exit(send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    elif cmd == "sink":
        sys.exit(sink(sys.argv[2], int(sys.argv[3])))
