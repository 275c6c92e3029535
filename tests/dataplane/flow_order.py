#!/usr/bin/env python3
"""Numbered UDP datagrams in several flows, sent from one network namespace and received in
another by this one process (a socket belongs to the namespace it was created in), in lock-step
bursts: a burst is sent, then received whole before the next one, so no queue on the way can
overflow however slow a loaded machine runs the receiving CPU. Prints one JSON object:

    {"sent": N, "received": N, "lost": 0, "reordered": 0, "per_flow": {...}}

`reordered` counts datagrams that arrived after a later one of their flow. Usage:

    flow_order.py --from NS --src ADDR --to NS --dst ADDR --port P [--flows 8] [--bursts 200]
                  [--burst 64] [--cpu 0]
"""
import argparse
import ctypes
import json
import os
import socket
import struct

CLONE_NEWNET = 0x40000000
SO_RCVBUFFORCE = 33
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src_ns", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--to", dest="dst_ns", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--flows", type=int, default=8)
    ap.add_argument("--bursts", type=int, default=200)
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--cpu", type=int, default=0, help="the CPU everything is sent from")
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    enter(a.dst_ns)
    rx = socket.socket(fam, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    rx.bind((a.dst, a.port))
    rx.settimeout(5.0)
    enter(a.src_ns)
    tx = []
    for i in range(a.flows):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((a.src, 30000 + i))
        tx.append(s)
    sent = [0] * a.flows
    last = [0] * a.flows
    got = [0] * a.flows
    reordered = 0
    lost_bursts = 0
    for _ in range(a.bursts):
        for j in range(a.burst):
            f = j % a.flows
            sent[f] += 1
            tx[f].sendto(struct.pack("!II", f, sent[f]) + b"\0" * 56, (a.dst, a.port))
        for _ in range(a.burst):
            try:
                data = rx.recv(2048)
            except socket.timeout:
                lost_bursts += 1
                break
            f, seq = struct.unpack("!II", data[:8])
            got[f] += 1
            if seq < last[f]:
                reordered += 1
            last[f] = max(last[f], seq)
    total_sent, total_got = sum(sent), sum(got)
    print(json.dumps({"sent": total_sent, "received": total_got, "lost": total_sent - total_got,
                      "reordered": reordered, "lost_bursts": lost_bursts,
                      "per_flow": {str(30000 + i): {"sent": sent[i], "received": got[i]} for i in range(a.flows)}}))


if __name__ == "__main__":
    main()
