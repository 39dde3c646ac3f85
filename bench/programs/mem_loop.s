# Standard benchmark: memory-heavy loop (loads and stores to input memory and the stack).
# Input memory: u64 iteration count at offset 0, then a 64-byte buffer. 15 instructions per iteration.
    ldxdw %r6, [%r1]
    mov %r7, %r1
    add %r7, 8
    mov %r0, 0
loop:
    mov %r3, %r6
    and %r3, 56
    mov %r4, %r7
    add %r4, %r3
    ldxdw %r5, [%r4]
    add %r5, %r6
    stxdw [%r4], %r5
    ldxw %r2, [%r4+4]
    add %r0, %r2
    stxb [%r10-1], %r5
    ldxb %r2, [%r10-1]
    add %r0, %r2
    sth [%r10-4], 7
    sub %r6, 1
    jne %r6, 0, loop
    exit
