"""Random programs for the kernel differential fuzz and the verifier agreement matrix."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.program import Program

ALU = [isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND, isa.BPF_LSH,
       isa.BPF_RSH, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV, isa.BPF_ARSH]
JMP = [isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JSET, isa.BPF_JNE, isa.BPF_JSGT, isa.BPF_JSGE,
       isa.BPF_JLT, isa.BPF_JLE, isa.BPF_JSLT, isa.BPF_JSLE]
IMMS = [0, 1, -1, 2, 7, 31, 32, 63, 0x7FFFFFFF, -0x80000000, 255, -8]
I = isa.Instruction  # noqa: E741


def random_program(rng):
    """Straight-line-ish programs over r0-r5 (random 64-bit values, ALU/ALU32 with signed div/mod,
    movsx, byte swaps, stack round trips, input loads, forward jumps), folding everything into r0."""
    body = []
    for reg in range(6):
        body.extend(isa.lddw(reg, rng.getrandbits(64)))
    size = rng.randint(4, 40)
    for _ in range(size):
        kind = rng.random()
        cls = isa.BPF_ALU64 if rng.random() < 0.6 else isa.BPF_ALU
        dst, src = rng.randrange(6), rng.randrange(6)
        if kind < 0.55:
            op = rng.choice(ALU)
            off = 1 if op in (isa.BPF_DIV, isa.BPF_MOD) and rng.random() < 0.4 else 0
            if op == isa.BPF_MOV and rng.random() < 0.3:
                off = rng.choice([8, 16] + ([32] if cls == isa.BPF_ALU64 else []))
                body.append(I(cls | op | isa.BPF_X, dst, src, off))
            elif rng.random() < 0.5:
                body.append(I(cls | op | isa.BPF_X, dst, src, off))
            else:
                imm = rng.choice(IMMS) if rng.random() < 0.6 else rng.randint(-100000, 100000)
                if op in (isa.BPF_LSH, isa.BPF_RSH, isa.BPF_ARSH):
                    imm = rng.randrange(64 if cls == isa.BPF_ALU64 else 32)
                body.append(I(cls | op | isa.BPF_K, dst, 0, off, imm))
        elif kind < 0.62:
            body.append(I(cls | isa.BPF_NEG, dst))
        elif kind < 0.70:
            width = rng.choice([16, 32, 64])
            if rng.random() < 0.3:
                body.append(I(isa.BPF_ALU64 | isa.BPF_END, dst, 0, 0, width))  # bswap
            else:
                body.append(I(isa.BPF_ALU | isa.BPF_END | rng.choice([isa.BPF_TO_LE, isa.BPF_TO_BE]), dst, 0, 0,
                              width))
        elif kind < 0.80:
            size_ = rng.choice([isa.BPF_B, isa.BPF_H, isa.BPF_W, isa.BPF_DW])
            body.append(I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, src, -16))
            body.append(I(isa.BPF_LDX | rng.choice([isa.BPF_MEM, isa.BPF_MEMSX]) | size_, dst, 10, -16)
                        if size_ != isa.BPF_DW else I(isa.BPF_LDX | isa.BPF_MEM | size_, dst, 10, -16))
        else:
            op = rng.choice(JMP)
            jcls = isa.BPF_JMP if rng.random() < 0.6 else isa.BPF_JMP32
            skip = rng.randint(0, 3)
            if rng.random() < 0.5:
                body.append(("J", I(jcls | op | isa.BPF_X, dst, src), skip))
            else:
                body.append(("J", I(jcls | op | isa.BPF_K, dst, 0, 0, rng.choice(IMMS)), skip))
    for reg in range(1, 6):
        body.append(I(isa.BPF_ALU64 | isa.BPF_MUL | isa.BPF_K, 0, 0, 0, 0x01000193))
        body.append(I(isa.BPF_ALU64 | isa.BPF_XOR | isa.BPF_X, 0, reg))
    body.append(I(isa.EXIT))
    # forward jumps: lddw only appears before the first jump, so no target is a lddw tail
    resolved = []
    for i, item in enumerate(body):
        if isinstance(item, tuple):
            _, insn, skip = item
            insn.off = min(i + 1 + skip, len(body) - 1) - i - 1
            item = insn
        resolved.append(item)
    return Program(resolved)


def mutate(insns, rng):
    """A copy of ``insns`` with one field of one instruction changed (opcode, registers, offset, immediate)."""
    out = [isa.Instruction(i.opcode, i.dst, i.src, i.off, i.imm) for i in insns]
    pcs = [pc for pc, i in enumerate(out) if i.opcode != 0 or pc == 0 or out[pc - 1].opcode != isa.LDDW]
    insn = out[rng.choice(pcs)]
    field = rng.randrange(5)
    if field == 0 and insn.opcode != isa.LDDW:
        insn.opcode = rng.choice([0x07, 0x0f, 0x17, 0x1f, 0x27, 0x37, 0x3f, 0x47, 0x57, 0x67, 0x6f, 0x77, 0x7f,
                                  0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0x04, 0x0c, 0x64, 0x74,
                                  0xb4, 0xbc, 0x61, 0x69, 0x71, 0x79, 0x62, 0x63, 0x6a, 0x6b, 0x72, 0x73, 0x7a,
                                  0x7b, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0xa5, 0xad, 0x95, 0x85, 0xdb, 0xc3])
    elif field == 1:
        insn.dst = rng.randrange(11)
    elif field == 2:
        insn.src = rng.randrange(11) if insn.opcode != isa.LDDW else insn.src
    elif field == 3:
        insn.off = isa.s16(insn.off + rng.choice([-8, -4, -2, -1, 1, 2, 4, 8, 64, -600]))
    elif insn.opcode != isa.LDDW:
        insn.imm = isa.s32(rng.choice([0, 1, -1, 7, 8, 31, 32, 63, 64, 255, 4096, -512, 0x7FFFFFFF]))
    return out


def compares_addresses(program, input_pointer=True):
    """True when a conditional jump may compare a pointer (r10, the input in r1, or a copy) with a
    number: its outcome then depends on where memory is, which differs between the kernel and our
    VM (Linux allows it to root). Flow-insensitive, so it errs towards True."""
    pointers = {10} | ({1} if input_pointer else set())
    insns = program.insns
    changed = True
    spilled = False
    while changed:
        changed = False
        for insn in insns:
            if insn.opcode & 7 == isa.BPF_STX and insn.dst == 10 and insn.src in pointers and not spilled:
                spilled = True
                changed = True
            cls = insn.opcode & 7
            if cls == isa.BPF_ALU64 and insn.opcode & 0xF0 in (isa.BPF_MOV, isa.BPF_ADD, isa.BPF_SUB) \
                    and insn.opcode & isa.BPF_X and insn.src in pointers and insn.dst not in pointers:
                pointers.add(insn.dst)
                changed = True
            elif cls == isa.BPF_LDX and insn.src == 10 and spilled and insn.dst not in pointers:
                pointers.add(insn.dst)  # a spilled pointer read back
                changed = True
    for insn in insns:
        if insn.opcode & 7 in (isa.BPF_JMP, isa.BPF_JMP32) and insn.opcode & 0xF0 not in (0x00, 0x80, 0x90):
            uses_x = insn.opcode & isa.BPF_X
            if insn.dst in pointers and not (uses_x and insn.src in pointers):
                return True
            if uses_x and insn.src in pointers and insn.dst not in pointers:
                return True
    return False
