"""tcpdump's filters on real loopback traffic: the classic program (SO_ATTACH_FILTER) and our eBPF
translation of it (SO_ATTACH_BPF) on packet sockets bound to lo pass exactly the packets our VM
passes, for UDP and TCP traffic this test generates on 127.0.0.1."""

import socket
import struct
import time
from collections import Counter

from conftest import missing
from iotbpf.ebpf.loader import cbpf

FILTERS = {
    "ip and udp": """(000) ldh      [12]
(001) jeq      #0x800           jt 2\tjf 5
(002) ldb      [23]
(003) jeq      #0x11            jt 4\tjf 5
(004) ret      #262144
(005) ret      #0
""",
    # tcpdump -d 'tcp port 80' (Ethernet): IPv6 and IPv4, fragments, either port
    "tcp port 80": """(000) ldh      [12]
(001) jeq      #0x86dd          jt 2\tjf 8
(002) ldb      [20]
(003) jeq      #0x6             jt 4\tjf 19
(004) ldh      [54]
(005) jeq      #0x50            jt 18\tjf 6
(006) ldh      [56]
(007) jeq      #0x50            jt 18\tjf 19
(008) jeq      #0x800           jt 9\tjf 19
(009) ldb      [23]
(010) jeq      #0x6             jt 11\tjf 19
(011) ldh      [20]
(012) jset     #0x1fff          jt 19\tjf 13
(013) ldxb     4*([14]&0xf)
(014) ldh      [x + 14]
(015) jeq      #0x50            jt 18\tjf 16
(016) ldh      [x + 16]
(017) jeq      #0x50            jt 18\tjf 19
(018) ret      #262144
(019) ret      #0
""",
    "udp dst port 53": """(000) ldh      [12]
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
""",
    # pktlen and scratch memory too: "greater 100" as tcpdump -d prints it
    "greater 100": """(000) ld       #pktlen
(001) jge      #0x64            jt 2\tjf 3
(002) ret      #262144
(003) ret      #0
""",
}


def ports(packet):
    """(sport, dport) of an IPv4 UDP/TCP packet with an Ethernet header, else None."""
    if len(packet) < 34 or packet[12:14] != b"\x08\x00" or packet[23] not in (6, 17):
        return None
    ihl = (packet[14] & 0xF) * 4
    if len(packet) < 14 + ihl + 4:
        return None
    return struct.unpack(">HH", packet[14 + ihl:18 + ihl])


def _bind(kind, port):
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        missing("a free 127.0.0.1:%d (%s)" % (port, exc))
    return sock


def traffic():
    """UDP to 53 and to another port, UDP *from* 53, TCP to 80 and to another port; returns our ports."""
    ours = set()
    dns = _bind(socket.SOCK_DGRAM, 53)
    other_udp = _bind(socket.SOCK_DGRAM, 0)
    web = _bind(socket.SOCK_STREAM, 80)
    other_tcp = _bind(socket.SOCK_STREAM, 0)
    web.listen(4)
    other_tcp.listen(4)
    ours.add(other_udp.getsockname()[1])
    ours.add(other_tcp.getsockname()[1])
    opened = [dns, other_udp, web, other_tcp]
    try:
        for i in range(3):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            opened.append(client)
            client.bind(("127.0.0.1", 0))
            ours.add(client.getsockname()[1])
            client.sendto(b"query %d" % i, ("127.0.0.1", 53))
            client.sendto(b"x" * (50 + 40 * i), other_udp.getsockname())
        dns.sendto(b"from port 53", other_udp.getsockname())  # source 53, not destination 53
        for server in (web, other_tcp):
            client = socket.create_connection(server.getsockname())
            opened.append(client)
            ours.add(client.getsockname()[1])
            conn, _ = server.accept()
            opened.append(conn)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            conn.recv(100)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 200)
            client.recv(1000)
    finally:
        for sock in opened:
            sock.close()
    time.sleep(0.3)  # the FINs of the closes
    return ours


def test_kernel_verdicts_equal_the_vm_on_loopback_traffic(no_bpf_left, tmp_path):
    from iotbpf.platforms.kernel import sockfilter

    programs = dict((name, cbpf.parse(text)) for name, text in FILTERS.items())
    sockets = {}
    try:
        sockets["all"] = sockfilter.packet_socket("lo")
        for name, insns in programs.items():
            sockets[(name, "classic")] = sockfilter.packet_socket("lo", classic=insns)
            sockets[(name, "ebpf")] = sockfilter.packet_socket("lo", ebpf=insns)
        ours = traffic()
        received = dict((key, sockfilter.drain(sock)) for key, sock in sockets.items())
    finally:
        for sock in sockets.values():
            sock.close()

    def mine(packets):
        return Counter(p for p in packets if ports(p) and (ports(p)[0] in ours or ports(p)[1] in ours))

    everything = mine(received["all"])
    assert sum(everything.values()) >= 20, "too little traffic seen on lo"
    for name, insns in programs.items():
        vm_pass = Counter(dict((p, n) for p, n in everything.items() if cbpf.run_filter(insns, p) != 0))
        vm_pass_compiled = Counter(dict((p, n) for p, n in everything.items()
                                        if cbpf.run_filter(insns, p, engine="compiled") != 0))
        assert vm_pass == vm_pass_compiled, name
        for kind in ("classic", "ebpf"):
            kernel_pass = mine(received[(name, kind)])
            assert kernel_pass == vm_pass, (name, kind, len(kernel_pass), len(vm_pass))
        print("%-16s %3d of %3d loopback packets pass (kernel classic == kernel eBPF == our VM)" % (
            name, sum(vm_pass.values()), sum(everything.values())))
    # the same traffic as a capture file: `iotbpf cbpf --pcap` counts what the kernel passed
    import subprocess
    import sys

    import dpkt

    from conftest import REPO

    capture = tmp_path / "lo.pcap"
    with open(capture, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for packet, n in sorted(everything.items()):
            for _ in range(n):
                writer.writepkt(packet, ts=1.0)
    listing = tmp_path / "filter.txt"
    for name in ("tcp port 80", "udp dst port 53"):
        listing.write_text(FILTERS[name])
        out = subprocess.run([sys.executable, "-m", "iotbpf", "cbpf", str(listing), "--pcap", str(capture)],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
        assert out.returncode == 0, out.stderr
        kernel = sum(mine(received[(name, "classic")]).values())
        assert ": %d packets, %d passed" % (sum(everything.values()), kernel) in out.stdout, (name, out.stdout)
    # each filter both passes and drops something: the comparison is not vacuous
    for name in ("ip and udp", "tcp port 80", "udp dst port 53"):
        passed = sum(1 for p in everything if cbpf.run_filter(programs[name], p))
        assert 0 < passed < len(everything), name
