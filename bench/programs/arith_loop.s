# Standard benchmark: arithmetic loop (ALU64 ops and one conditional jump per iteration).
# Input memory: u64 iteration count at offset 0. 9 instructions per iteration.
    ldxdw %r6, [%r1]
    mov %r0, 0
    mov %r2, 1
loop:
    add %r0, %r2
    mul %r2, 3
    xor %r0, %r2
    rsh %r2, 1
    add %r2, 7
    and %r0, 0xffffff
    lsh %r0, 1
    sub %r6, 1
    jne %r6, 0, loop
    exit
