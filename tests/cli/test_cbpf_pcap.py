"""`iotbpf cbpf --pcap`: a tcpdump filter over a capture file (pcap and pcapng, written here with
dpkt), the program from a file or from standard input; bad captures give one-line errors."""

import struct
import subprocess
import sys

import dpkt
import pytest

from conftest import REPO

UDP53 = """(000) ldh      [12]
(001) jeq      #0x86dd          jt 2\tjf 6
(002) ldb      [20]
(003) jeq      #0x11            jt 4\tjf 15
(004) ldh      [56]
(005) jeq      #0x35            jt 14\tjf 15
(006) jeq      #0x800           jt 7\tjf 15
(007) ldb      [23]
(008) jeq      #0x11            jt 9\tjf 15
(009) ldh      [20]
(010) jset     #0x1fff          jt 15\tjf 11
(011) ldxb     4*([14]&0xf)
(012) ldh      [x + 16]
(013) jeq      #0x35            jt 14\tjf 15
(014) ret      #262144
(015) ret      #0
"""


def frame(proto, sport, dport, payload=b"hello"):
    l4 = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload if proto == 17 else \
        struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 512, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return bytes(12) + b"\x08\x00" + ip + l4


# 3 DNS queries, a DNS answer (source port 53), 2 other UDP datagrams, 4 TCP segments, 1 ARP
PACKETS = [frame(17, 40000 + i, 53) for i in range(3)] + [frame(17, 53, 40000)] + \
    [frame(17, 40001, 123), frame(17, 40002, 5353)] + [frame(6, 40003, 53) for _ in range(4)] + \
    [bytes(12) + b"\x08\x06" + bytes(28)]


def write(path, packets, ng=False):
    with open(path, "wb") as f:
        writer = dpkt.pcapng.Writer(f) if ng else dpkt.pcap.Writer(f)
        for i, p in enumerate(packets):
            writer.writepkt(p, ts=1700000000 + i * 0.001)


def iotbpf(*argv, stdin=None):
    return subprocess.run([sys.executable, "-m", "iotbpf", *argv], capture_output=True, text=True, input=stdin,
                          cwd=REPO, timeout=120)


@pytest.mark.parametrize("ng", [False, True])
def test_filter_over_a_capture_counts_what_it_passes(tmp_path, ng):
    program = tmp_path / "udp53.txt"
    program.write_text(UDP53)
    capture = tmp_path / ("c.pcapng" if ng else "c.pcap")
    write(capture, PACKETS, ng)
    out = iotbpf("cbpf", str(program), "--pcap", str(capture))
    assert out.returncode == 0, out.stderr
    size = len(PACKETS[0])
    assert out.stdout.strip() == "%s: 11 packets, 3 passed (%d bytes), 8 dropped" % (capture, 3 * size)


def test_the_program_can_come_from_stdin(tmp_path):
    capture = tmp_path / "c.pcap"
    write(capture, PACKETS)
    out = iotbpf("cbpf", "-", "--pcap", str(capture), "--engine", "compiled", stdin=UDP53)
    assert out.returncode == 0, out.stderr
    assert ": 11 packets, 3 passed" in out.stdout


def test_bad_captures_are_one_line_errors(tmp_path):
    program = tmp_path / "udp53.txt"
    program.write_text(UDP53)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    for path in (str(junk), str(tmp_path / "missing.pcap")):
        out = iotbpf("cbpf", str(program), "--pcap", path)
        assert out.returncode != 0 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    raw = tmp_path / "raw.pcap"
    with open(raw, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_RAW)
        writer.writepkt(PACKETS[0][14:], ts=1.0)
    out = iotbpf("cbpf", str(program), "--pcap", str(raw))
    assert out.returncode != 0 and "link type" in out.stderr
