"""Classic BPF: the `ip and udp` filter from tcpdump -d text and from -dd passes UDP over IPv4
and rejects TCP, ARP and IPv6; the translation follows Linux's rules (scratch memory, X, div by 0,
out-of-range loads); bad listings give clear errors."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader import cbpf

IP_UDP_D = """(000) ldh      [12]
(001) jeq      #0x800           jt 2\tjf 5
(002) ldb      [23]
(003) jeq      #0x11            jt 4\tjf 5
(004) ret      #65535
(005) ret      #0
"""

IP_UDP_DD = """{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 3, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 },
{ 0x15, 0, 1, 0x00000011 },
{ 0x6, 0, 0, 0x0000ffff },
{ 0x6, 0, 0, 0x00000000 },
"""

IP_UDP_DDD = "6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 17\n6 0 0 65535\n6 0 0 0\n"

# tcpdump -d 'udp dst port 53': IPv4/IPv6, fragments, ldxb 4*([14]&0xf), indirect loads
UDP_53_D = """(000) ldh      [12]
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


def eth(ethertype, payload):
    return bytes(6) + bytes(6) + struct.pack(">H", ethertype) + payload


def ipv4(proto, payload=b"", ihl=5, frag=0):
    total = ihl * 4 + len(payload)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                      bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return hdr + bytes(ihl * 4 - 20) + payload


def udp(sport, dport, data=b"hi"):
    return struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data


def ipv6(next_header, payload):
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), next_header, 64, bytes(16), bytes(16)) + payload


UDP4 = eth(0x0800, ipv4(17, udp(1234, 53)))
TCP4 = eth(0x0800, ipv4(6, bytes(20)))
ARP = eth(0x0806, bytes(28))
UDP6 = eth(0x86DD, ipv6(17, udp(1234, 53)))


@pytest.mark.parametrize("listing", [IP_UDP_D, IP_UDP_DD, IP_UDP_DDD])
def test_ip_and_udp_passes_udp_over_ipv4_only(listing):
    insns = cbpf.parse(listing)
    assert cbpf.run_filter(insns, UDP4) == 65535
    assert cbpf.run_filter(insns, TCP4) == 0
    assert cbpf.run_filter(insns, ARP) == 0
    assert cbpf.run_filter(insns, UDP6) == 0


def test_d_dd_and_ddd_parse_to_the_same_program():
    assert cbpf.parse(IP_UDP_D) == cbpf.parse(IP_UDP_DD) == cbpf.parse(IP_UDP_DDD)
    assert cbpf.parse(cbpf.encode_dd(cbpf.parse(IP_UDP_D))) == cbpf.parse(IP_UDP_D)


def test_udp_dst_port_53_uses_the_ip_header_length():
    insns = cbpf.parse(UDP_53_D)
    assert cbpf.run_filter(insns, UDP4) == 262144
    assert cbpf.run_filter(insns, eth(0x0800, ipv4(17, udp(1, 53), ihl=6))) == 262144  # options
    assert cbpf.run_filter(insns, eth(0x0800, ipv4(17, udp(1, 80)))) == 0
    assert cbpf.run_filter(insns, eth(0x0800, ipv4(17, udp(1, 53), frag=5))) == 0  # fragment
    assert cbpf.run_filter(insns, UDP6) == 262144
    assert cbpf.run_filter(insns, TCP4) == 0


def test_short_packets_end_the_filter_with_zero():
    insns = cbpf.parse(IP_UDP_D)
    assert cbpf.run_filter(insns, b"") == 0
    assert cbpf.run_filter(insns, UDP4[:20]) == 0


def test_scratch_memory_x_register_length_and_division():
    prog = cbpf.parse("""
        ld #pktlen
        st M[3]
        ldx #7
        txa
        add x
        st M[15]
        ld M[3]
        mul #3
        tax
        ld M[15]
        div x
        ret a
    """)
    # (len*3) then A = M[15] (=14) / X (= len*3)
    assert cbpf.run_filter(prog, bytes(2)) == 14 // 6
    div0 = cbpf.parse("ldx #0\nld #5\ndiv x\nret #9")
    assert cbpf.run_filter(div0, b"") == 0  # classic BPF returns 0 on division by zero
    neg = cbpf.parse("ld #5\nneg\nret a")
    assert cbpf.run_filter(neg, b"") == (-5) & 0xFFFFFFFF


def test_large_unsigned_immediates_compare_unsigned():
    prog = cbpf.parse("ld [0]\njgt #0xfffffff0 jt 3 jf 4\nret #1\nret #2\nret #3")
    assert cbpf.run_filter(prog, b"\xff\xff\xff\xff") == 2
    assert cbpf.run_filter(prog, b"\x00\x00\x00\x01") == 3


@pytest.mark.parametrize("text,match", [
    ("ldh [12]", "must end with ret"),
    ("foo #1\nret #0", "unknown classic BPF instruction"),
    ("ld #1\ndiv #0\nret a", "division by constant zero"),
    ("st M[16]\nret #0", "scratch memory index 16"),
    ("(000) ldh [12]\n(002) ret #0", "out of sequence"),
    ("{ 0x28, 0, 0 },", "expected 4 fields"),
    ("jeq #1 jt 5 jf 6\nret #0", "jump past the end"),
    ("", "empty"),
])
def test_bad_listings_give_clear_errors(text, match):
    with pytest.raises(LoadError, match=match):
        cbpf.check(cbpf.parse(text))


def test_cli_prints_the_return_value(cli, tmp_path):
    f = tmp_path / "ip_udp.txt"
    f.write_text(IP_UDP_D)
    r = cli("cbpf", f, "--packet", UDP4.hex(), "--packet", "0x" + TCP4.hex(), "--packet", ARP.hex())
    assert r.code == 0 and r.out.split() == ["65535", "0", "0"]
    r = cli("cbpf", f, "--ebpf")
    assert r.code == 0 and "ldabsh 12" in r.out and "exit" in r.out
    r = cli("cbpf", f, "--packet", "zz")
    assert r.code == 2 and r.err.startswith("error: bad --packet")
    bad = tmp_path / "bad.txt"
    bad.write_text("ldh [12]\n")
    r = cli("cbpf", bad, "--packet", "00")
    assert r.code == 2 and "must end with ret" in r.err and "Traceback" not in r.err


@given(st.lists(st.sampled_from(IP_UDP_D.split("\n") + UDP_53_D.split("\n") + [
    "ret a", "ret x", "tax", "txa", "ldx M[2]", "st M[1]", "ld #pktlen", "jset #7 jt 1 jf 2",
    "add #1", "div x", "ja 3", "(7)", "{ 0x6, 0, 0, 0x1 },", "ldxb 4*([14]&0xf)", "garbage"]),
    max_size=12), st.binary(max_size=64))
def test_random_listings_either_load_or_fail_cleanly(lines, packet):
    text = "\n".join(lines)
    try:
        insns = cbpf.parse(text)
        value = cbpf.run_filter(insns, packet)
    except LoadError:
        return
    assert 0 <= value <= 0xFFFFFFFF
