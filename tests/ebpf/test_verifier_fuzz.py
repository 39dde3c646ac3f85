"""Soundness fuzzing: every program the verifier accepts runs in the interpreter, with all run-time
checks on, without a memory fault or a budget overrun.

Programs come from a random generator biased towards almost-safe code (bounds checks, pointer
arithmetic, stack slots, loops) and from single-field mutations of the conformance suite and of
the verifier's own safe examples. Each test prints how many programs it tried and how many the
verifier accepted (run with -s to see; IOTBPF_FUZZ_EXAMPLES=N for longer runs).
"""

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.vm import VM, BPFFault
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.loader.data import parse_data
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.types import (
    ARG_ANYTHING,
    ARG_CONST_MAP_PTR,
    ARG_CONST_SIZE,
    ARG_PTR_TO_MAP_KEY,
    ARG_PTR_TO_MAP_VALUE,
    ARG_PTR_TO_MEM,
    BPF_MAP_TYPE_ARRAY,
    RET_INTEGER,
    RET_PTR_TO_MAP_VALUE_OR_NULL,
    HelperSpec,
    HelperTable,
    MapSpec,
)
from iotbpf.ebpf.verifier import verify

BUDGET = 3000
STATS = {}

I = isa.Instruction  # noqa: E741
ALU_CODES = [isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND,
             isa.BPF_LSH, isa.BPF_RSH, isa.BPF_NEG, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV,
             isa.BPF_ARSH]
JMP_CODES = list(isa.COND_JMP_OPS)
SIZES = [isa.BPF_B, isa.BPF_H, isa.BPF_W, isa.BPF_DW]
IMMS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 255, -1, -2, -8, 0x7FFFFFFF, -0x80000000]


def _imm(rng):
    return rng.choice(IMMS) if rng.random() < 0.7 else rng.randint(-40, 40)


def _reg(rng):
    return rng.choice([0, 3, 4, 5, 6, 7, 8, 9, 0, 3, 4])


def _snippet(rng):
    """A few instructions; jumps use ('J', insn, k) placeholders resolved later."""
    kind = rng.randrange(17)
    cls = isa.BPF_ALU64 if rng.random() < 0.75 else isa.BPF_ALU
    size = rng.choice(SIZES)
    if kind <= 2:
        code = rng.choice(ALU_CODES)
        if code == isa.BPF_NEG:
            return [I(cls | code, _reg(rng))]
        off = 1 if code in (isa.BPF_DIV, isa.BPF_MOD) and rng.random() < 0.3 else 0
        if rng.random() < 0.5:
            return [I(cls | code | isa.BPF_X, _reg(rng), rng.choice([_reg(rng), 2]), off)]
        return [I(cls | code, _reg(rng), 0, off, _imm(rng))]
    if kind == 3:  # stack store
        off = rng.choice([-8, -16, -24, -32, -4, -2, -1, -512, -504, -3, -40]) \
            if rng.random() < 0.9 else rng.randint(-520, 4)
        if rng.random() < 0.5:
            return [I(isa.BPF_STX | isa.BPF_MEM | size, 10, _reg(rng), off)]
        return [I(isa.BPF_ST | isa.BPF_MEM | size, 10, 0, off, _imm(rng))]
    if kind == 4:  # stack load
        off = rng.choice([-8, -16, -24, -32, -4, -2, -1, -512, -40]) if rng.random() < 0.9 \
            else rng.randint(-520, 4)
        return [I(isa.BPF_LDX | isa.BPF_MEM | size, _reg(rng), 10, off)]
    if kind == 5:  # input load/store at a constant offset
        off = rng.randint(0, 20)
        if rng.random() < 0.7:
            return [I(isa.BPF_LDX | isa.BPF_MEM | size, _reg(rng), 1, off)]
        return [I(isa.BPF_STX | isa.BPF_MEM | size, 1, _reg(rng), off)]
    if kind == 6:  # bounds check against the length
        n = rng.randint(0, 24)
        op = rng.choice([isa.BPF_JLT, isa.BPF_JLE, isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JEQ, isa.BPF_JNE,
                         isa.BPF_JSLT, isa.BPF_JSGE, isa.BPF_JSGT, isa.BPF_JSLE])
        jcls = isa.BPF_JMP if rng.random() < 0.8 else isa.BPF_JMP32
        return [("J", I(jcls | op, 2, 0, 0, n), rng.randint(1, 6))]
    if kind == 14:  # pointer against the end of the input, then an access below it
        k = rng.randint(0, 16)
        op = rng.choice([isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JLT, isa.BPF_JLE])
        out = [I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 3, 1),
               I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 3, 2),
               I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 4, 1),
               I(isa.BPF_ALU64 | isa.BPF_ADD, 4, 0, 0, k)]
        if rng.random() < 0.5:
            out.append(("J", I(isa.BPF_JMP | op | isa.BPF_X, 4, 3), 2))
        else:
            out.append(("J", I(isa.BPF_JMP | op | isa.BPF_X, 3, 4), 2))
        out.append(I(isa.BPF_LDX | isa.BPF_MEM | size, 5, 1, rng.randint(0, 16)))
        return out
    if kind == 15:  # arithmetic on a copy of the length, then a check
        return [I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 5, 2),
                I(isa.BPF_ALU64 | rng.choice([isa.BPF_ADD, isa.BPF_SUB]), 5, 0, 0, rng.randint(-8, 8)),
                ("J", I(isa.BPF_JMP | rng.choice([isa.BPF_JLT, isa.BPF_JGE, isa.BPF_JSLT, isa.BPF_JEQ]), 5, 0, 0,
                        rng.randint(0, 16)), rng.randint(1, 4)),
                I(isa.BPF_LDX | isa.BPF_MEM | size, 4, 1, rng.randint(0, 16))]
    if kind == 16:  # a byte index checked against the length with a 32-bit compare
        r = _reg(rng)
        return [I(isa.BPF_ALU64 | isa.BPF_AND, r, 0, 0, rng.choice([15, 63, 255])),
                ("J", I(rng.choice([isa.BPF_JMP, isa.BPF_JMP32]) | isa.BPF_JGE | isa.BPF_X, r, 2), 4),
                I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 3, 1),
                I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 3, r),
                I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_B, 4, 3, 0)]
    if kind == 7:  # variable index into the input
        r = _reg(rng)
        mask = rng.choice([3, 7, 15, 31, 255])
        out = [I(isa.BPF_ALU64 | isa.BPF_AND, r, 0, 0, mask),
               I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 3, 1),
               I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 3, r)]
        if rng.random() < 0.5:
            out.append(I(isa.BPF_LDX | isa.BPF_MEM | size, 4, 3, rng.randint(0, 4)))
        else:
            out.insert(0, ("J", I(isa.BPF_JMP | isa.BPF_JGE | isa.BPF_X, r, 2), rng.randint(3, 6)))
            out.append(I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_B, 4, 3, 0))
        return out
    if kind == 8:  # variable stack offset
        r = _reg(rng)
        mask = rng.choice([7, 15, 31, 63])
        return [I(isa.BPF_ALU64 | isa.BPF_AND, r, 0, 0, mask),
                I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 5, 10),
                I(isa.BPF_ALU64 | isa.BPF_SUB | isa.BPF_X, 5, r),
                I((isa.BPF_LDX if rng.random() < 0.5 else isa.BPF_STX) | isa.BPF_MEM | size,
                  4 if rng.random() < 0.5 else 5, 5, -rng.choice([8, 16, 64, 72, 448, 450]))]
    if kind in (9, 10):  # random forward conditional jump
        code = rng.choice(JMP_CODES)
        jcls = isa.BPF_JMP if rng.random() < 0.7 else isa.BPF_JMP32
        if rng.random() < 0.5:
            insn = I(jcls | code | isa.BPF_X, _reg(rng), rng.choice([_reg(rng), 2]))
        else:
            insn = I(jcls | code, _reg(rng), 0, 0, _imm(rng))
        return [("J", insn, rng.randint(1, 8))]
    if kind == 11:  # a counted loop
        r = rng.choice([6, 7, 8, 9])
        n = rng.choice([1, 2, 3, 5, 10, 50, 200])
        body = [I(isa.BPF_ALU64 | isa.BPF_ADD, 0, 0, 0, 1)]
        if rng.random() < 0.5:
            body.append(I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_B, 4, 1, rng.randint(0, 3)))
        step = rng.choice([1, 1, 1, 2])
        return ([I(isa.BPF_ALU64 | isa.BPF_MOV, r, 0, 0, n)] + body +
                [I(isa.BPF_ALU64 | isa.BPF_SUB, r, 0, 0, step),
                 I(isa.BPF_JMP | rng.choice([isa.BPF_JNE, isa.BPF_JSGT, isa.BPF_JGT]), r, 0,
                   -(len(body) + 2), 0)])
    if kind == 12:  # copy a pointer around
        a, b = rng.choice([(3, 1), (5, 10), (4, 3), (0, 1)])
        return [I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, a, b),
                I(isa.BPF_ALU64 | rng.choice([isa.BPF_ADD, isa.BPF_SUB]), a, 0, 0, rng.randint(-16, 16))]
    return [I(isa.EXIT)]


def random_program(seed):
    rng = random.Random(seed)
    items = []
    for r in (0, 3, 4, 5, 6, 7, 8, 9):
        if rng.random() < 0.9:
            items.append(I(isa.BPF_ALU64 | isa.BPF_MOV, r, 0, 0, _imm(rng)))
    for _ in range(rng.randint(1, 14)):
        items.extend(_snippet(rng))
    items.append(I(isa.EXIT))
    insns = []
    for it in items:
        if isinstance(it, tuple):
            _, insn, k = it
            target = min(len(items) - 1, len(insns) + k)
            insn.off = target - len(insns) - 1
            insns.append(insn)
        else:
            insns.append(it)
    return insns


def run_checked(program, mem_size, seed, helpers=None, maps_for_vm=None):
    """Verify; if accepted, run on several inputs with the proven worst-case instruction count as
    the budget and fail on any fault. Returns whether the verifier accepted the program."""
    try:
        result = verify(program, helpers=helpers, mem_size=mem_size, budget=BUDGET)
    except VerifierError:
        return False
    assert result.max_path_insns <= BUDGET
    rng = random.Random(seed)
    sizes = [mem_size] if mem_size is not None else [0, 1, 2, 4, 8, 13, 24, 64]
    for n in sizes:
        mem = bytes(rng.randrange(256) for _ in range(n))
        vm = VM(program, helpers=helpers, budget=result.max_path_insns, maps=maps_for_vm)
        try:
            vm.run(mem=mem)
        except BPFFault as exc:
            raise AssertionError("accepted program faulted (%s) with %d-byte input:\n%s" % (
                exc, n, "\n".join("%3d: %s" % (pc, isa.format_insn(i, pc))
                                   for pc, i in enumerate(program.insns) if i.opcode))) from None
    return True


def _count(name, accepted):
    tried, acc = STATS.get(name, (0, 0))
    STATS[name] = (tried + 1, acc + (1 if accepted else 0))


@given(st.integers(0, 2 ** 32), st.sampled_from([None, None, 4, 8, 16, 24]))
def test_random_programs_accepted_only_if_they_run_without_fault(seed, mem_size):
    program = Program(random_program(seed))
    _count("random", run_checked(program, mem_size, seed))


def _mutate(insns, rng):
    insns = [I(x.opcode, x.dst, x.src, x.off, x.imm) for x in insns]
    candidates = [pc for pc, x in enumerate(insns) if x.opcode != 0]
    pc = rng.choice(candidates)
    x = insns[pc]
    what = rng.randrange(5)
    if what == 0:
        x.off = x.off + rng.choice([-8, -4, -2, -1, 1, 2, 4, 8, 256])
    elif what == 1:
        x.imm = (x.imm + rng.choice([-1, 1, 8, -8, 1 << 20])) if x.opcode != isa.LDDW else x.imm
    elif what == 2:
        x.dst = rng.randrange(11)
    elif what == 3:
        x.src = rng.randrange(11) if x.opcode != isa.LDDW else x.src
    else:
        same_kind = [op for op, e in isa.OPCODES.items() if e[0] == isa.OPCODES.get(x.opcode, ("?",))[0]]
        if same_kind:
            x.opcode = rng.choice(same_kind)
    return insns


def _conformance_programs():
    from conftest import shared_dir

    base = shared_dir()
    out = []
    if base is None:
        return out
    folder = base / "conformance"
    for path in sorted(folder.glob("*.data")):
        p = parse_data(path.read_text(), path.name).program()
        out.append((p.insns, len(p.mem) if p.mem else None))
    return out


CONFORMANCE = _conformance_programs()


@given(st.integers(0, 2 ** 32), st.booleans())
def test_mutated_conformance_programs_accepted_only_if_safe(seed, fixed_size):
    if not CONFORMANCE:
        return
    rng = random.Random(seed)
    insns, size = CONFORMANCE[rng.randrange(len(CONFORMANCE))]
    mutated = _mutate(insns, rng)
    if rng.random() < 0.5:
        mutated = _mutate(mutated, rng)
    _count("conformance-mutation", run_checked(Program(mutated), size if fixed_size else None, seed))


# Map programs: a lookup helper with the Linux signature, a real array map and the VM's helpers.
def _helpers_and_maps():
    from iotbpf.ebpf import helpers as linux

    table = linux.linux_helpers()
    return table


MAP_PROGRAM = """
    mov %r6, %r1
    stw [%r10-4], 1
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxdw %r3, [%r0+8]
    and %r3, 15
    mov %r4, %r0
    add %r4, %r3
    ldxb %r5, [%r4]
    stxdw [%r0], %r5
    lock add [%r0+8], %r5
out:
    mov %r0, 0
    exit
"""


@settings(max_examples=int(os.environ.get("IOTBPF_FUZZ_EXAMPLES", "60")))
@given(st.integers(0, 2 ** 32))
def test_mutated_map_programs_accepted_only_if_safe(seed):
    from iotbpf.ebpf import maps

    rng = random.Random(seed)
    spec = MapSpec("counters", BPF_MAP_TYPE_ARRAY, 4, 24, 4)
    helpers = HelperTable([
        HelperSpec(1, "map_lookup_elem", [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY],
                   RET_PTR_TO_MAP_VALUE_OR_NULL, _helpers_and_maps().get(1).func),
        HelperSpec(2, "map_update_elem", [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY, ARG_PTR_TO_MAP_VALUE,
                                          ARG_ANYTHING], RET_INTEGER, _helpers_and_maps().get(2).func),
        HelperSpec(0x1000, "sum", [ARG_PTR_TO_MEM, ARG_CONST_SIZE], RET_INTEGER,
                   lambda ex, r1, r2, r3, r4, r5: sum(ex.memory.read_bytes(r1, r2))),
    ])
    choice = rng.random()
    ringbuf = choice < 0.35
    if choice > 0.7:  # bpf_loop with a callback writing through its context pointer
        program = Program(_mutate(Program.from_asm(LOOP_PROGRAM).insns, rng))
        _count("map-mutation", run_checked(program, None, seed, helpers=_helpers_and_maps()))
        return
    base = Program.from_asm(RINGBUF_PROGRAM if ringbuf else MAP_PROGRAM).insns
    mutated = _mutate(base, rng)
    if rng.random() < 0.5:
        mutated = _mutate(mutated, rng)
    if ringbuf:
        from iotbpf.ebpf.types import BPF_MAP_TYPE_RINGBUF

        helpers = _helpers_and_maps()
        the_map = maps.create_map(MapSpec("events", BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
    else:
        the_map = maps.create_map(spec)
    program = Program(mutated, maps=[the_map])
    _count("map-mutation", run_checked(program, None, seed, helpers=helpers))


LOOP_PROGRAM = """
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r1, %r2
    and %r1, 7
    lddw %r2, func cb
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-16]
    exit
cb:
    ldxdw %r3, [%r2]
    add %r3, %r1
    stxdw [%r2], %r3
    mov %r4, %r1
    and %r4, 7
    add %r2, %r4
    stxb [%r2+8], %r4
    mov %r0, 0
    exit
"""


RINGBUF_PROGRAM = """
    mov %r7, %r1
    mov %r8, %r2
    lddw %r1, map_fd 0
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    stdw [%r6+8], 7
    jlt %r8, 4, skip
    ldxw %r4, [%r7]
    stxw [%r6], %r4
skip:
    mov %r1, %r6
    mov %r2, 0
    call 132
out:
    mov %r0, 0
    exit
"""


def teardown_module(module):
    for name, (tried, acc) in sorted(STATS.items()):
        print("verifier fuzz %-22s tried %5d programs, accepted %5d, faults 0" % (name, tried, acc))


# Clang-compiled corpus (tests/c), mutated: standalone programs over a 32-byte input.
CORPUS_SOURCES = [("corpus_globals", None), ("corpus_signed", None), ("corpus_bswap", None),
                  ("corpus_loops", None), ("helpers_maps", None)]
_COMPILED = {}


def _corpus(clang):
    from conftest import REPO
    from iotbpf.ebpf.loader.elf import load_elf_object

    if not _COMPILED:
        for name, _ in CORPUS_SOURCES:
            obj = load_elf_object(clang.compile(REPO / "tests" / "c" / (name + ".c"), extra=(
                "-I", str(REPO / "tests" / "c"))))
            for section in obj.programs:
                _COMPILED[(name, section)] = obj.program(section)
    return _COMPILED


@given(st.integers(0, 2 ** 32))
def test_mutated_clang_programs_accepted_only_if_safe(clang, seed):
    from iotbpf.ebpf.helpers import linux_helpers
    from iotbpf.ebpf.maps import instantiate

    rng = random.Random(seed)
    corpus = _corpus(clang)
    key = sorted(corpus)[rng.randrange(len(corpus))]
    original = corpus[key]
    mutated = _mutate(original.insns, rng)
    if rng.random() < 0.3:
        mutated = _mutate(mutated, rng)
    program = Program(mutated, maps=list(original.maps), name=original.name)
    program.maps = [m.spec if hasattr(m, "spec") else m for m in original.maps]
    instantiate(program)
    _count("clang-mutation", run_checked(program, 32, seed, helpers=linux_helpers()))


# The verifier's trickiest proofs (length checks, end pointers, index < length, variable stack
# offsets), mutated: each mutation that is still accepted must still be safe.
TRICKY = [
    """
        mov %r0, 0
        jgt %r2, 64, out
        mov %r3, 0
    loop:
        jge %r3, %r2, out
        mov %r4, %r1
        add %r4, %r3
        ldxb %r5, [%r4]
        add %r0, %r5
        add %r3, 1
        ja loop
    out:
        exit
    """,
    """
        mov %r0, 0
        mov %r3, %r1
        add %r3, %r2
        mov %r4, %r1
        add %r4, 14
        jgt %r4, %r3, out
        ldxh %r0, [%r1+12]
        stb [%r1+13], 1
    out:
        exit
    """,
    """
        stdw [%r10-16], 0
        stdw [%r10-8], 0
        mov %r0, 0
        jlt %r2, 4, out
        ldxw %r3, [%r1]
        and %r3, 15
        mov %r4, %r10
        add %r4, -16
        add %r4, %r3
        ldxb %r0, [%r4]
        stb [%r4], 1
    out:
        exit
    """,
    """
        mov %r0, 0
        jeq %r2, 0, out
        mov %r5, %r2
        sub %r5, 4
        jslt %r5, 0, out
        ldxw %r0, [%r1]
        ldxb %r3, [%r1+3]
    out:
        exit
    """,
]
TRICKY.append("""
        mov %r0, 0
        mov %r3, 0
        mov %r4, 0
    loop:
        mov %r5, %r4
        add %r5, 2
        jgt %r5, %r2, out
        mov %r6, %r1
        add %r6, %r4
        ldxb %r7, [%r6]
        add %r0, %r7
        ldxb %r7, [%r6+1]
        and %r7, 7
        add %r4, 2
        add %r4, %r7
        add %r3, 1
        jlt %r3, 8, loop
    out:
        exit
""")
TRICKY_INSNS = [Program.from_asm(t).insns for t in TRICKY]


@given(st.integers(0, 2 ** 32), st.booleans())
def test_mutated_tricky_programs_accepted_only_if_safe(seed, twice):
    rng = random.Random(seed)
    insns = TRICKY_INSNS[rng.randrange(len(TRICKY_INSNS))]
    mutated = _mutate(insns, rng)
    if twice:
        mutated = _mutate(mutated, rng)
    _count("tricky-mutation", run_checked(Program(mutated), None, seed))
