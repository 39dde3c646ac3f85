"""The running Linux kernel as a backend (host-only, CPython).

``libbpf``: the ecosystem's loader (libbpf.so.1 through ctypes) -- raw programs and maps, clang
objects with CO-RE relocations against /sys/kernel/btf/vmlinux, attach/detach, map read/write,
BPF_PROG_TEST_RUN. ``oracle``: our VM and verifier judged against the kernel's.
``collector``: the in-kernel per-app monitor (apps/linux_monitor) behind
``iotbpf monitor --backend ebpf``. Nothing here is imported by the MicroPython core.
"""
