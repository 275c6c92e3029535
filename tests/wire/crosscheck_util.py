"""Helpers shared by the codec cross-checks: run xpmip-mh, run tshark, read its fields."""
import json
import os
import subprocess
import tempfile


class Tools:
    tool = None      # path of xpmip-mh
    tshark = "tshark"


def encode_pcap(messages, frame, **addr):
    """Encode JSON message specs with our codec into a pcap; return its path."""
    fd, spec = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(messages, f)
    pcap = spec.replace(".json", ".pcap")
    cmd = [Tools.tool, "encode", "--frame", frame, "--pcap", pcap, spec]
    for k, v in addr.items():
        cmd += ["--" + k, str(v)]
    subprocess.run(cmd, check=True)
    os.unlink(spec)
    return pcap


def tshark_fields(pcap, fields):
    """Decode a pcap with tshark; return one dict per packet: field -> list of string values."""
    cmd = [Tools.tshark, "-r", pcap, "-T", "json"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [p["_source"]["layers"] for p in json.loads(out)]


def decode_hex(data, bare_mh=False):
    """Decode bytes with our codec; return (exit code, parsed JSON)."""
    cmd = [Tools.tool, "decode"] + (["--mh"] if bare_mh else [])
    r = subprocess.run(cmd, input=data.hex(), capture_output=True, text=True)
    if r.returncode not in (0, 2):
        raise RuntimeError(f"xpmip-mh decode failed ({r.returncode}): {r.stderr}")
    return r.returncode, json.loads(r.stdout)
