"""Differential test: the compiled engine agrees with the interpreter on random programs.

Hypothesis builds programs of every instruction class -- ALU in both widths, jumps forward
and backward (loops, so budgets run out), loads/stores/atomics on the stack and on the
context, helper calls (faulting ones, callbacks, tail calls, stop), bpf-to-bpf calls
(recursion past 8 frames), callx, bad opcodes -- and both engines must agree on r0 or the
fault (kind, pc, text), the context and stack bytes afterwards, and instructions charged.
"""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines import compiler
from iotbpf.ebpf.engines.vm import VM, BPFFault, HelperFault
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.program import Program

M64 = (1 << 64) - 1

ALU_OPS = [cls | op | src for cls in (isa.BPF_ALU64, isa.BPF_ALU)
           for op in (isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND,
                      isa.BPF_LSH, isa.BPF_RSH, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV, isa.BPF_ARSH)
           for src in (isa.BPF_K, isa.BPF_X)] + [isa.BPF_ALU64 | isa.BPF_NEG, isa.BPF_ALU | isa.BPF_NEG]
JMP_OPS = [cls | op | src for cls in (isa.BPF_JMP, isa.BPF_JMP32) for op in isa.COND_JMP_OPS
           for src in (isa.BPF_K, isa.BPF_X)]
SIZES = (isa.BPF_B, isa.BPF_H, isa.BPF_W, isa.BPF_DW)
ATOMICS = (isa.BPF_ADD, isa.BPF_OR, isa.BPF_AND, isa.BPF_XOR, isa.BPF_ADD | isa.BPF_FETCH,
           isa.BPF_OR | isa.BPF_FETCH, isa.BPF_AND | isa.BPF_FETCH, isa.BPF_XOR | isa.BPF_FETCH,
           isa.BPF_XCHG, isa.BPF_CMPXCHG)
IMMS = (0, 1, 2, 3, 7, 8, 31, 32, 63, 64, -1, -8, -16, 0x7FFFFFFF, -0x80000000, 255, 1000, 0x12345678)
HELPER_IDS = (1, 2, 3, 5, 6, 12, 99)


class ProgArray:
    def __init__(self, programs):
        self.programs = programs

    def get_program(self, index):
        return self.programs[index] if 0 <= index < len(self.programs) else None


TAIL_TARGETS = ProgArray([
    Program.from_asm("mov %r0, %r6\nadd %r0, %r2\nexit"),
    Program.from_asm("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit"),
])


def h_mix(ex, r1, r2, r3, r4, r5):
    return (r1 * 31 + r2 * 7 + r3) & M64


def h_picky(ex, r1, r2, r3, r4, r5):
    if r1 & 7 == 0:
        raise HelperFault("r1 must not be a multiple of 8")
    return r1 >> 3


def h_poke(ex, r1, r2, r3, r4, r5):
    ex.memory.store(r1, 1, r2)
    return ex.memory.load(r1, 1)


def h_stop(ex, r1, r2, r3, r4, r5):
    if r1 & 3 == 0:
        ex.stop(r2)
    return r1


def h_loop(ex, r1, r2, r3, r4, r5):
    acc = 0
    for i in range(r3 & 3):
        acc = (acc + ex.call_callback(r2, i, acc, r4)) & M64
    return acc


def h_tail(ex, r1, r2, r3, r4, r5):
    return 0 if ex.tail_call(TAIL_TARGETS, r3 & 3) else 1


HELPERS = {1: h_mix, 2: h_picky, 3: h_poke, 5: h_stop, 6: h_loop, 12: h_tail}

spec = st.tuples(st.integers(0, 99), st.integers(0, 10), st.integers(0, 10), st.integers(-24, 24),
                 st.sampled_from(IMMS))
functions = st.lists(st.lists(spec, min_size=1, max_size=24), min_size=1, max_size=3)


def build(funcs):
    """Instruction slots from the drawn specs: main function first, each function ends in exit."""
    starts = []
    pc = 1  # slot 0 is `mov r9, r1`
    sizes = []
    for body in funcs:
        starts.append(pc)
        size = sum(2 if s[0] in (86, 87) else 1 for s in body) + 1
        sizes.append(size)
        pc += size
    total = pc
    insns = [isa.Instruction(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 9, 1)]
    for fi, body in enumerate(funcs):
        lo, hi = starts[fi], starts[fi] + sizes[fi]
        for sel, dst, src, off, imm in body:
            pc = len(insns)
            d = dst % 9  # r9 keeps the context pointer (mostly), r10 is read-only
            s = src
            if sel < 40:
                op = ALU_OPS[(sel * 7 + src) % len(ALU_OPS)]
                o = 1 if (op & 0xF0) in (isa.BPF_DIV, isa.BPF_MOD) and off % 5 == 0 else 0
                if op & isa.BPF_X:
                    imm = 0
                insns.append(isa.Instruction(op, d, s if op & isa.BPF_X else 0, o, imm))
            elif sel < 50:
                op = JMP_OPS[(sel * 5 + src) % len(JMP_OPS)]
                target = lo + (off % (hi - lo)) if off % 11 else pc + off
                insns.append(isa.Instruction(op, d, s if op & isa.BPF_X else 0, target - pc - 1,
                                             0 if op & isa.BPF_X else imm))
            elif sel < 53:
                target = lo + (off % (hi - lo))
                insns.append(isa.Instruction(isa.JA, 0, 0, target - pc - 1, 0))
            elif sel < 64:
                base = (10, 9, 9, s)[sel % 4]
                mode = isa.BPF_MEMSX if sel == 63 and SIZES[imm % 4] != isa.BPF_DW else isa.BPF_MEM
                moff = off * 4 - (100 if base == 10 else 0) if base == 10 else off % 16
                insns.append(isa.Instruction(isa.BPF_LDX | mode | SIZES[imm % 4], d, base, moff, 0))
            elif sel < 74:
                base = (10, 9, 9, d)[sel % 4]
                moff = off * 4 - 100 if base == 10 else off % 16
                size = SIZES[(sel + src) % 4]
                if sel % 2:
                    insns.append(isa.Instruction(isa.BPF_STX | isa.BPF_MEM | size, base, s, moff, 0))
                else:
                    insns.append(isa.Instruction(isa.BPF_ST | isa.BPF_MEM | size, base, 0, moff, imm))
            elif sel < 77:
                base = (10, 9, d)[sel % 3]
                moff = -8 * (1 + off % 8) if base == 10 else 8 * (off % 2)
                size = isa.BPF_DW if src % 2 else isa.BPF_W
                insns.append(isa.Instruction(isa.BPF_STX | isa.BPF_ATOMIC | size, base, s, moff,
                                             ATOMICS[(off + src) % len(ATOMICS)]))
            elif sel < 82:
                insns.append(isa.Instruction(isa.CALL, 0, 0, 0, HELPER_IDS[(src + off) % len(HELPER_IDS)]))
            elif sel < 86:
                callee = starts[(src % len(funcs))]
                insns.append(isa.Instruction(isa.CALL, 0, isa.BPF_PSEUDO_CALL, 0, callee - pc - 1))
            elif sel == 86:
                insns.extend(isa.lddw(d, (imm * 0x9E3779B97F4A7C15) & M64))
            elif sel == 87:
                callee = starts[(src % len(funcs))]
                insns.extend(isa.lddw(2 if off % 2 else d, (callee - pc - 1) & 0xFFFFFFFF,
                                      isa.BPF_PSEUDO_FUNC))
            elif sel < 90:
                insns.append(isa.Instruction(isa.EXIT))
            elif sel == 90:
                bits = (8, 16, 32)[src % 3]
                cls = isa.BPF_ALU64 if bits == 32 or off % 2 else isa.BPF_ALU
                insns.append(isa.Instruction(cls | isa.BPF_MOV | isa.BPF_X, d, s, bits, 0))
            elif sel == 91:
                op = (isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE, isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_BE,
                      isa.BPF_ALU64 | isa.BPF_END | isa.BPF_TO_LE)[src % 3]
                insns.append(isa.Instruction(op, d, 0, 0, (16, 32, 64)[off % 3]))
            elif sel == 92:
                insns.append(isa.Instruction(isa.CALLX, s))
            elif sel == 93:
                insns.append(isa.Instruction((0x8F, 0x07 | 0xE0, 0xFF)[src % 3], d, s, off, imm))
            else:
                insns.append(isa.Instruction(isa.BPF_ALU64 | isa.BPF_ADD, d, 0, 0, imm))
        insns.append(isa.Instruction(isa.EXIT))
    assert len(insns) == total
    return insns


def outcome(insns, engine, mem, budget):
    program = Program(insns)
    try:
        vm = VM(program, helpers=HELPERS, engine=engine, budget=budget)
    except LoadError as exc:
        return ("load", str(exc)), None, None, None
    ctx = bytearray(mem)
    try:
        result = ("ok", vm.run(ctx=ctx if mem else None))
    except BPFFault as exc:
        result = ("fault", exc.kind, exc.pc, str(exc))
    stacks = [bytes(buf) for buf in vm.stack_bufs]
    return result, bytes(ctx), stacks, vm.last.insns_executed


@settings(max_examples=300)
@given(functions, st.binary(min_size=0, max_size=48), st.sampled_from([30, 200, 1000, 5000, None]))
def test_engines_agree_on_random_programs(funcs, mem, budget):
    insns = build(funcs)
    interp = outcome(insns, "interp", mem, budget if budget is not None else 20000)
    compiled = outcome(insns, "compiled", mem, budget if budget is not None else 20000)
    assert compiled == interp, Program(insns).disasm()


def test_budget_fault_is_at_the_first_pc_of_the_block_that_cannot_pay():
    text = "mov %r0, 0\nl:\nadd %r0, 1\nadd %r0, 1\njne %r0, 0, l\nexit"
    for budget in range(1, 12):
        interp = outcome(Program.from_asm(text).insns, "interp", b"", budget)
        compiled = outcome(Program.from_asm(text).insns, "compiled", b"", budget)
        assert compiled == interp
        assert compiled[0][:3] == ("fault", "budget", 0 if budget < 1 else 1)


def test_deep_recursion_faults_identically():
    insns = Program.from_asm("mov %r1, 0\ncall local f\nexit\nf:\nadd %r1, 1\ncall local f\nexit").insns
    assert outcome(insns, "compiled", b"", 1000) == outcome(insns, "interp", b"", 1000)
    assert outcome(insns, "compiled", b"", 1000)[0][1] == "depth"


def test_tail_calls_carry_the_registers():
    text = "mov %r6, 40\nmov %r2, 2\nmov %r3, 0\ncall 12\nmov %r0, 99\nexit"
    insns = Program.from_asm(text).insns
    assert outcome(insns, "compiled", b"", 1000) == outcome(insns, "interp", b"", 1000)
    assert outcome(insns, "compiled", b"", 1000)[0] == ("ok", 42)


def test_callbacks_run_compiled_functions():
    text = ("lddw %r2, func cb\nmov %r3, 3\nmov %r4, 5\ncall 6\nexit\n"
            "cb:\nmov %r0, %r1\nmul %r0, %r3\nadd %r0, %r2\nexit")
    insns = Program.from_asm(text).insns
    assert outcome(insns, "compiled", b"", 1000) == outcome(insns, "interp", b"", 1000)
    assert outcome(insns, "compiled", b"", 1000)[0] == ("ok", 20)  # acc += i * 5 + acc for i = 0, 1, 2


def test_memory_writes_land_in_the_context():
    text = "stw [%r1+4], 0x01020304\nldxdw %r0, [%r1]\nexit"
    insns = Program.from_asm(text).insns
    mem = bytes(8)
    interp = outcome(insns, "interp", mem, None)
    assert outcome(insns, "compiled", mem, None) == interp
    assert interp[1] == struct.pack("<II", 0, 0x01020304)


def test_compiled_programs_are_cached_by_content():
    insns = Program.from_asm("mov %r0, 1\nexit").insns
    first = compiler.compile_program(Program(insns))
    again = compiler.compile_program(Program([isa.Instruction(i.opcode, i.dst, i.src, i.off, i.imm)
                                              for i in insns]))
    assert first is again


alu_chain = st.lists(st.tuples(st.sampled_from(ALU_OPS + ALU_OPS[:12]), st.integers(0, 4), st.integers(0, 4),
                               st.sampled_from(IMMS + (5, 12, 60, 0xFFFF, 0xFFFFFFF))), min_size=1, max_size=30)


@given(st.lists(st.sampled_from(IMMS), min_size=5, max_size=5), alu_chain,
       st.sampled_from([isa.BPF_JLT, isa.BPF_JGT, isa.BPF_JNE, isa.BPF_JLE, isa.BPF_JGE, isa.BPF_JEQ]))
def test_engines_agree_where_value_ranges_drop_masks(starts, chain, jop):
    # small constants and a bounded loop: the compiled code proves many masks idle here
    insns = [isa.Instruction(isa.BPF_ALU64 | isa.BPF_MOV, r, 0, 0, v & 0xFFFF) for r, v in enumerate(starts)]
    insns.append(isa.Instruction(isa.BPF_ALU64 | isa.BPF_MOV, 6, 0, 0, 0))
    body = [isa.Instruction(op, d, s if op & isa.BPF_X else 0, 0, 0 if op & isa.BPF_X else imm)
            for op, d, s, imm in chain]
    insns += body
    insns.append(isa.Instruction(isa.BPF_ALU64 | isa.BPF_ADD, 6, 0, 0, 1))
    insns.append(isa.Instruction(isa.BPF_JMP | jop, 6, 0, -len(body) - 2, 5))
    for r in range(1, 5):
        insns.append(isa.Instruction(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 0, r))
    insns.append(isa.Instruction(isa.EXIT))
    assert outcome(insns, "compiled", b"", 3000) == outcome(insns, "interp", b"", 3000), Program(insns).disasm()


def test_runs_without_a_budget_count_the_same_instructions():
    from conftest import REPO

    for name in ("arith_loop", "mem_loop", "call_loop"):
        insns = Program.from_asm((REPO / "bench" / "programs" / (name + ".s")).read_text()).insns
        mem = struct.pack("<Q", 50) + bytes(range(64))
        assert outcome(insns, "compiled", mem, None) == outcome(insns, "interp", mem, None)
