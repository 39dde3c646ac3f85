"""tcpdump filters on real sockets: a classic program through SO_ATTACH_FILTER and its eBPF
translation (iotbpf.ebpf.loader.cbpf.translate) through SO_ATTACH_BPF, on a packet socket of an interface.

Two changes the kernel's verifier needs in our translation (Linux never verifies its own
translation, we load ours like any program): ``ld #pktlen`` reads the packet length from r2 in our
VM, a socket filter gets an sk_buff in r1 instead, so the entry copies ``skb->len``; and A = X = 0
at entry become ``mov32 r, 0`` instead of ``xor32 r, r`` (which reads the unset register).
"""

from __future__ import annotations

import ctypes
import socket
import struct

from iotbpf.ebpf import isa
from iotbpf.ebpf.loader import cbpf
from iotbpf.platforms.kernel import libbpf

SO_ATTACH_FILTER = 26
SO_ATTACH_BPF = 50
ETH_P_ALL = 0x0003
SKB_LEN_OFFSET = 0  # offsetof(struct __sk_buff, len)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def socket_translation(insns: list) -> list:
    """The eBPF translation of a classic program, for a kernel socket filter (skb->len for pktlen)."""
    out = cbpf.translate(insns)
    for i, insn in enumerate(out[:4]):
        if insn.opcode == isa.BPF_ALU | isa.BPF_XOR | isa.BPF_X and insn.dst == insn.src:
            # A = 0, X = 0 as Linux writes them (xor32 r, r) read an unset register to its verifier
            out[i] = isa.Instruction(isa.BPF_ALU | isa.BPF_MOV | isa.BPF_K, insn.dst, 0, 0, 0)
        elif insn.opcode == isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X and insn.dst == cbpf.REG_LEN and insn.src == 2:
            out[i] = isa.Instruction(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, cbpf.REG_LEN, 1, SKB_LEN_OFFSET)
    return out


def attach_classic(sock: socket.socket, insns: list) -> None:
    """SO_ATTACH_FILTER: the kernel checks and runs the classic program itself."""
    array = (_SockFilter * len(insns))(*[_SockFilter(c.code, c.jt, c.jf, c.k) for c in insns])
    prog = _SockFprog(len(insns), ctypes.cast(array, ctypes.POINTER(_SockFilter)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))


def attach_ebpf(sock: socket.socket, insns: list, name: str = "iotbpf_cbpf") -> None:
    """Load the translated eBPF as a BPF_PROG_TYPE_SOCKET_FILTER and SO_ATTACH_BPF it (the socket
    keeps the program; our fd is closed at once, so closing the socket unloads it)."""
    code = isa.encode(socket_translation(insns))
    with libbpf.load_program(code, libbpf.BPF_PROG_TYPE_SOCKET_FILTER, name) as prog:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, struct.pack("i", prog.fd))


def packet_socket(interface: str = "lo", classic: list | None = None, ebpf: list | None = None,
                  rcvbuf: int = 1 << 22) -> socket.socket:
    """A non-blocking AF_PACKET socket on ``interface``, the filter attached before it is bound
    (so no unfiltered packet is ever queued)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if classic is not None:
            attach_classic(sock, classic)
        if ebpf is not None:
            attach_ebpf(sock, ebpf)
        sock.bind((interface, ETH_P_ALL))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def drain(sock: socket.socket) -> list:
    """Every queued packet (bytes, from the link-layer header on)."""
    out = []
    while True:
        try:
            out.append(sock.recv(1 << 16))
        except BlockingIOError:
            return out
