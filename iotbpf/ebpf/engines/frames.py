"""What the three engines share at run time: the fault and stop exceptions, block results,
entering a frame, calling back into a subprogram and invoking a helper.
MicroPython-compatible; imports nothing of iotbpf outside ``ebpf``."""

import struct

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import RuntimeFailure
from iotbpf.ebpf.isa import M32, M64
from iotbpf.ebpf.memory import MemoryFault

EXITED = -1  # block result: the outermost frame exited
TAIL = -2  # block result: a tail call is pending


class BPFFault(RuntimeFailure):
    """A run stopped: ``str`` is ``pc N: <insn>: <reason>``, followed by `` [file:line: text]``
    when the program has line info (``.source``); ``.kind`` is one of FAULT_KINDS."""

    def __init__(self, pc, insn_text, reason, kind, addr=None, source=None):
        message = "pc %d: %s: %s" % (pc, insn_text, reason)
        if source is not None:
            message += " [%s]" % format_source(source)
        super().__init__(message)
        self.pc = pc
        self.insn_text = insn_text
        self.reason = reason
        self.kind = kind
        self.addr = addr
        self.source = source


def format_source(source):
    """``file:line: text`` (or ``file:line``) for a line_info entry (file, line, text)."""
    file, line, text = source
    text = (text or "").strip()
    return "%s:%d: %s" % (file, line, text) if text else "%s:%d" % (file, line)


def source_line(program, pc):
    """The (file, line, text) for ``pc``: the nearest line_info entry at or before ``pc``
    inside the same function, or None when the program carries no line info."""
    info = getattr(program, "line_info", None)
    if not info:
        return None
    entry = info.get(pc)
    if entry is not None:
        return entry
    start = 0
    for s in getattr(program, "subprograms", None) or (0,):
        if s <= pc:
            start = s
    best = -1
    for p in info:
        if start <= p <= pc and p > best:
            best = p
    return info[best] if best >= 0 else None


class HelperFault(RuntimeFailure):
    """Raised by a helper for bad arguments; the engine turns it into BPFFault kind "helper"."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class StopRun(Exception):
    """Raised by ``ex.stop(r0)`` (and legacy packet loads out of range): the run returns r0."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


_UNPACK = {1: isa.make_struct("<B"), 2: isa.make_struct("<H"), 4: isa.make_struct("<I"),
          8: isa.make_struct("<Q")}
_UNPACK_S = {1: isa.make_struct("<b"), 2: isa.make_struct("<h"), 4: isa.make_struct("<i")}
_UNPACK_BE = {1: isa.make_struct(">B"), 2: isa.make_struct(">H"), 4: isa.make_struct(">I"),
              8: isa.make_struct(">Q")}
_SIZE_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_FMT_S = {1: "<b", 2: "<h", 4: "<i"}
_unpack_from = struct.unpack_from
_pack_into = struct.pack_into



def _call_function(engine, pc, r1, r2, r3, r4, r5):
    """Run the subprogram at ``pc`` in a new frame until it exits (callbacks); returns r0."""
    r = engine.regs
    ex = engine.ex
    if not engine.is_entry(pc):
        raise HelperFault("callback address %d is not the start of a function" % pc)
    depth = len(ex.frames)
    if depth >= isa.MAX_CALL_FRAMES - 1:
        raise engine.vm.fault(ex.pc, "call depth exceeded (%d frames) calling back into pc %d"
                              % (isa.MAX_CALL_FRAMES, pc), "depth", engine.program)
    saved = (r[0], r[1], r[2], r[3], r[4], r[5])
    ex.frames.append((EXITED, r[6], r[7], r[8], r[9], r[10]))
    r[1], r[2], r[3], r[4], r[5] = r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64
    r[10] = engine.vm.stack_tops[depth + 1]
    engine._loop(pc)
    result = r[0]
    r[0], r[1], r[2], r[3], r[4], r[5] = saved
    return result


def _enter_frame(engine, r, pc, target):
    """A local call at ``pc`` to ``target``: push the caller's frame (depth limit 8)."""
    ex = engine.ex
    frames = ex.frames
    depth = len(frames)
    if depth >= isa.MAX_CALL_FRAMES - 1:
        raise engine.vm.fault(pc, "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth",
                              engine.program)
    frames.append((pc + 1, r[6], r[7], r[8], r[9], r[10]))
    r[10] = engine.vm.stack_tops[depth + 1]
    return target


def _helper_fault(vm, program, pc, name, exc):
    """The BPFFault for an exception helper ``name`` raised at ``pc`` (every engine's texts and kinds)."""
    if isinstance(exc, HelperFault):
        return vm.fault(pc, "helper %s: %s" % (name, exc.reason), "helper", program)
    if isinstance(exc, MemoryFault):
        return vm.fault(pc, "helper %s: %s" % (name, exc.reason), exc.kind, program, exc.addr)
    return vm.fault(pc, "helper %s failed: %s: %s" % (name, type(exc).__name__, exc), "helper", program)


def _helper_result(vm, program, pc, name, v):
    """A helper's return value that is not a plain int: None is 0, an int subclass its value,
    anything else a fault."""
    if v is None:
        return 0
    if isinstance(v, int):
        return int(v)
    raise vm.fault(pc, "helper %s returned %s, not an integer" % (name, type(v).__name__), "helper", program)


def _invoke_helper(vm, ex, r, program, pc, fn, name):
    """Call helper ``fn`` for the call at ``pc``: r0 = result; faults wrapped; TAIL or pc + 1."""
    ex.pc = pc
    try:
        v = fn(ex, r[1], r[2], r[3], r[4], r[5])
    except StopRun:
        raise
    except BPFFault:
        raise
    except Exception as exc:
        raise _helper_fault(vm, program, pc, name, exc) from None
    if v.__class__ is not int:
        v = _helper_result(vm, program, pc, name, v)
    r[0] = v & M64
    if ex.tail_target is not None:
        return TAIL
    return pc + 1
