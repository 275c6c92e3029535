"""The lab's WAN counter (wan_counter.bpf.c): a tc ingress program on the transit bridges' ports in
xl-wan that records every GRE packet crossing them, read back through an mmap of its map.

    with WanCounter(obj, {"m0": "br0", "l0": "br0", "m1": "br1", "l1": "br1"}) as wc:
        wc.reset()
        ... traffic ...
        packets = wc.records()   # in the order they crossed, each with its port and link (bridge)

Record times ("t") are CLOCK_MONOTONIC seconds: compare them with time.monotonic().

Nothing is lost to a busy machine: the program runs in each packet's own softirq. Loaded with
bpftool, attached with tc through nsenter (so that bpffs stays visible), pinned under a private
directory that close() removes.
"""
import ctypes
import ipaddress
import json
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
import time

RECORDS = 1 << 17
RECORD = struct.Struct("=QIIHHHBBI16s16sI")
assert RECORD.size == 64
HEADER = struct.Struct("=QQ")
SYS_BPF = 321          # x86_64
BPF_OBJ_GET = 7


def _obj_get(path):
    """bpf(BPF_OBJ_GET): a file descriptor for a pinned map."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    p = ctypes.create_string_buffer(path.encode())
    attr = struct.pack("=QII", ctypes.addressof(p), 0, 0) + bytes(128 - 16)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(SYS_BPF, BPF_OBJ_GET, buf, len(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"bpf(BPF_OBJ_GET, {path})")
    return fd


class WanCounter:
    def __init__(self, obj, ports, netns="xl-wan"):
        """ports: interface name in `netns` -> the link name its packets are counted for."""
        self.netns, self.ports = netns, dict(ports)
        self.pin = tempfile.mkdtemp(prefix="xl-count-", dir="/sys/fs/bpf")
        self.attached, self.mem, self.fd = [], None, -1
        try:
            self._run("bpftool", "prog", "load", obj, f"{self.pin}/prog", "type", "classifier", "pinmaps", self.pin)
            self.fd = _obj_get(f"{self.pin}/wan_records")
            self.mem = mmap.mmap(self.fd, RECORDS * RECORD.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self.link_of, self.port_of = {}, {}
            for dev, link in self.ports.items():
                self._run("nsenter", f"--net=/run/netns/{netns}", "tc", "qdisc", "replace", "dev", dev, "clsact")
                self._run("nsenter", f"--net=/run/netns/{netns}", "tc", "filter", "replace", "dev", dev, "ingress",
                          "pref", "7", "handle", "7", "bpf", "direct-action", "pinned", f"{self.pin}/prog")
                self.attached.append(dev)
                ifindex = json.loads(self._run("ip", "-j", "-n", netns, "link", "show", "dev", dev))[0]["ifindex"]
                self.link_of[ifindex], self.port_of[ifindex] = link, dev
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _run(*cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
        return r.stdout

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def reset(self):
        """Forget what was recorded (call while no traffic crosses)."""
        self.mem[0:HEADER.size] = HEADER.pack(0, 0)

    def header(self):
        return HEADER.unpack_from(self.mem, 0)

    def records(self, settle=0.3):
        """Every record since reset(), in crossing order; waits `settle` s for what is in flight.
        Raises if the buffer overflowed (the count would be a sample)."""
        time.sleep(settle)
        n, overflow = self.header()
        if overflow:
            raise AssertionError(f"the WAN counter's buffer overflowed: {overflow} records dropped (raise RECORDS)")
        out = []
        for i in range(1, n + 1):
            ns, ifindex, seq, sport, dport, payload, proto, family, key, src, dst, _ = RECORD.unpack_from(
                self.mem, i * RECORD.size)
            size = 4 if family == 4 else 16
            out.append({"i": i, "t": ns / 1e9, "link": self.link_of.get(ifindex, f"ifindex {ifindex}"),
                        "port": self.port_of.get(ifindex, f"ifindex {ifindex}"),
                        "seq": seq, "sport": sport, "dport": dport, "payload": payload, "proto": proto,
                        "key": key, "src": str(ipaddress.ip_address(src[:size])),
                        "dst": str(ipaddress.ip_address(dst[:size]))})
        return out

    def close(self):
        for dev in self.attached:
            subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", "tc", "filter", "del", "dev", dev, "ingress",
                            "pref", "7", "handle", "7", "bpf"], capture_output=True, timeout=60)
        self.attached = []
        if self.mem is not None:
            self.mem.close()
            self.mem = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        shutil.rmtree(self.pin, ignore_errors=True)
