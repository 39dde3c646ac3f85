"""Loaders: programs from files (``files.load_program``), ELF objects with BTF, ``.ibpf`` bundles,
classic BPF, bpf_conformance ``.data`` tests, and maps pinned across restarts."""
