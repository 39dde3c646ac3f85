# Standard benchmark: call-heavy loop (two nested bpf-to-bpf calls per iteration).
# Input memory: u64 iteration count at offset 0. 11 instructions per iteration.
    ldxdw %r6, [%r1]
    mov %r0, 0
    mov %r7, 0
loop:
    mov %r1, %r6
    call local square_plus_one
    add %r7, %r0
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, %r7
    exit
square_plus_one:
    mov %r0, %r1
    mul %r0, %r1
    call local increment
    exit
increment:
    add %r0, 1
    exit
