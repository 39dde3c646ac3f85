"""The running kernel as the oracle of our VM and verifier.

A standalone program (what ``iotbpf run`` and bpf_conformance execute: r1 = the input, r2 = its
length) is framed for the kernel as a ``BPF_PROG_TYPE_SYSCALL`` program (not sleepable, so every
map type is allowed):

- a prologue sets r1 to a pointer into an array map whose one value holds the input (``lddw r1,
  map_value``), so the kernel checks every input access against the value's size exactly as our
  verifier does with ``mem_size`` (r1 = 0 when there is no input), and r2 to the length;
- every ``exit`` of the main function becomes ``lddw r1, map_value(result); *(u64 *)(r1 + 0) = r0;
  exit``, so all 64 bits of r0 reach us (BPF_PROG_TEST_RUN's retval has only the low 32);
- jumps, local calls and ``lddw`` function pointers are re-targeted around the inserted slots.

The kernel's load is its verifier's verdict; BPF_PROG_TEST_RUN is its execution.
"""

from __future__ import annotations

import struct

from iotbpf.platforms.kernel import libbpf

_SLOT = struct.Struct("<BBhi")
LDDW = 0x18
EXIT = 0x95
CALL = 0x85
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
PSEUDO_FUNC = 4
PSEUDO_CALL = 1


def _decode(code: bytes) -> list:
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = _SLOT.unpack_from(code, i)
        out.append([op, regs & 0xF, regs >> 4, off, imm])
    return out


def _encode(slots: list) -> bytes:
    return b"".join(_SLOT.pack(op, (dst & 0xF) | ((src & 0xF) << 4), off, imm) for op, dst, src, off, imm in slots)


def _lddw_map_value(dst: int, fd: int, offset: int = 0) -> list:
    return [[LDDW, dst, PSEUDO_MAP_VALUE, 0, fd], [0, 0, 0, 0, offset]]


def _is_jump(op: int) -> bool:
    cls = op & 7
    return cls in (5, 6) and (op & 0xF0) not in (0x80, 0x90)


class FrameError(ValueError):
    pass


def frame(code: bytes, mem_fd: int | None, mem_len: int, result_fd: int) -> bytes:
    """The standalone program ``code`` with the input prologue and the r0-saving exits (see above)."""
    slots = _decode(code)
    n = len(slots)
    starts = set()
    pc = 0
    while pc < n:
        op, _dst, src, _off, imm = slots[pc]
        if op == CALL and src == PSEUDO_CALL:
            starts.add(pc + 1 + imm)
        elif op == LDDW and src == PSEUDO_FUNC:
            starts.add(pc + 1 + imm)
        pc += 2 if op == LDDW else 1
    main_end = min([s for s in starts if 0 < s <= n] or [n])
    if mem_fd is not None:
        prologue = _lddw_map_value(1, mem_fd) + [[0xB7, 2, 0, 0, mem_len]]
    else:
        prologue = [[0xB7, 1, 0, 0, 0], [0xB7, 2, 0, 0, 0]]
    trailer = _lddw_map_value(1, result_fd) + [[0x7B, 1, 0, 0, 0], [EXIT, 0, 0, 0, 0]]
    new_index = []
    out = list(prologue)
    pc = 0
    while pc < n:
        new_index.append(len(out))
        slot = slots[pc]
        if slot[0] == EXIT and pc < main_end:
            out.extend([list(s) for s in trailer])
        else:
            out.append(list(slot))
        if slot[0] == LDDW and slot[2] in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            # our loaders give a map's index in the program: the kernel takes it through fd_array
            out[-1][2] = PSEUDO_MAP_IDX if slot[2] == PSEUDO_MAP_FD else PSEUDO_MAP_IDX_VALUE
        if slot[0] == LDDW and pc + 1 < n:
            pc += 1
            new_index.append(len(out))
            out.append(list(slots[pc]))
        pc += 1
    new_index.append(len(out))  # one past the end: a jump there stays out of range

    def retarget(old_pc, old_rel):
        target = old_pc + 1 + old_rel
        if not 0 <= target <= n:
            return old_rel  # out of range before, out of range after: the kernel rejects it the same
        return new_index[target] - (new_index[old_pc] + 1)

    pc = 0
    while pc < n:
        op, _dst, src, off, imm = slots[pc]
        at = new_index[pc]
        if _is_jump(op):
            if op == 0x06:  # gotol: 32-bit offset in imm
                out[at][4] = retarget(pc, imm)
            else:
                rel = retarget(pc, off)
                if not -0x8000 <= rel <= 0x7FFF:
                    raise FrameError("jump at %d no longer fits in 16 bits after framing" % pc)
                out[at][3] = rel
        elif op == CALL and src == PSEUDO_CALL:
            out[at][4] = retarget(pc, imm)
        elif op == LDDW and src == PSEUDO_FUNC:
            out[at][4] = retarget(pc, imm)
        pc += 2 if op == LDDW else 1
    return _encode(out)


class Verdict:
    """The kernel's word on one program: accepted (and r0 when it ran) or the verifier's reason."""

    def __init__(self, accepted: bool, reason: str = "", r0: int | None = None, run_error: str = ""):
        self.accepted = accepted
        self.reason = reason
        self.r0 = r0
        self.run_error = run_error

    def __repr__(self):
        if self.accepted:
            return "Verdict(accepted, r0=%s%s)" % (None if self.r0 is None else hex(self.r0),
                                                   ", " + self.run_error if self.run_error else "")
        return "Verdict(rejected: %s)" % self.reason


# Syscall programs must be sleepable, and sleepable programs may use only array/hash maps; a few
# helpers are offered to packet programs only: then the same framed program is tried as these
# (the prologue replaces their context in r1, so the verdict is about the same code).
PROGRAM_TYPES = (libbpf.BPF_PROG_TYPE_SYSCALL, libbpf.BPF_PROG_TYPE_SOCKET_FILTER, 3, 6)  # 3 tc, 6 xdp
RETRY_REASONS = ("Sleepable programs can only use", "cannot use helper", "unknown func")


def _create(spec) -> libbpf.Map:
    spec = getattr(spec, "spec", spec)  # a Map object carries its MapSpec
    kernel_map = libbpf.Map(spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.name or "m",
                            flags=spec.flags or 0)
    data = getattr(spec, "data", None)
    if data:
        try:
            kernel_map.update(b"\0" * spec.key_size, bytes(data)[:spec.value_size].ljust(spec.value_size, b"\0"))
        except libbpf.KernelError:
            kernel_map.close()
            raise
    return kernel_map


class Oracle:
    """Loads standalone programs into the kernel and runs them; close() (or ``with``) frees everything."""

    def __init__(self):
        libbpf.require(need_btf=False)
        self.result = libbpf.Map(libbpf.BPF_MAP_TYPE_ARRAY, 4, 8, 1, "iotbpf_r0")
        self.loaded = 0

    def check(self, code: bytes, mem: bytes = b"", run: bool = True, maps=()) -> Verdict:
        """Load (and run) a standalone program over ``mem``; ``maps``: the MapSpecs its lddw refer to."""
        mem_map = None
        created = []
        try:
            for spec in maps:
                try:
                    created.append(_create(spec))
                except libbpf.KernelError as exc:
                    return Verdict(False, "map %s: %s" % (getattr(spec, "name", "?"), exc))
            if mem:
                mem_map = libbpf.Map(libbpf.BPF_MAP_TYPE_ARRAY, 4, len(mem), 1, "iotbpf_mem")
                mem_map.update(b"\0\0\0\0", bytes(mem))
            try:
                framed = frame(code, mem_map.fd if mem_map else None, len(mem), self.result.fd)
            except FrameError as exc:
                return Verdict(False, "cannot frame: %s" % exc)
            prog, prog_type, reason = None, None, ""
            for prog_type in PROGRAM_TYPES:
                try:
                    prog = libbpf.load_program(framed, prog_type, "iotbpf_oracle",
                                               libbpf.BPF_F_SLEEPABLE if prog_type == libbpf.BPF_PROG_TYPE_SYSCALL
                                               else 0, fd_array=[m.fd for m in created])
                    break
                except libbpf.KernelError as exc:
                    reason = exc.reason()
                    if not any(text in exc.reason() for text in RETRY_REASONS):
                        break
            if prog is None:
                return Verdict(False, reason)
            self.loaded += 1
            with prog:
                if not run:
                    return Verdict(True)
                self.result.update(b"\0\0\0\0", b"\xa5" * 8)
                try:
                    prog.test_run(data=None if prog_type == libbpf.BPF_PROG_TYPE_SYSCALL else b"\0" * 64)
                except libbpf.KernelError as exc:
                    return Verdict(True, run_error=str(exc))
                value = self.result.lookup(b"\0\0\0\0")
                return Verdict(True, r0=struct.unpack("<Q", value)[0])
        finally:
            if mem_map is not None:
                mem_map.close()
            for m in created:
                m.close()

    def close(self) -> None:
        self.result.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
