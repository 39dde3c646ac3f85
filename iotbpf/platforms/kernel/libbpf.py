"""libbpf.so.1 through ctypes: the kernel's own loader, without a compiler or a Python extension.

Two layers of libbpf are used. The low-level one (``bpf_prog_load``, ``bpf_map_create``,
``bpf_prog_test_run_opts``, ``bpf_map_*_elem``) loads raw instructions, which is what the VM/verifier
oracle needs. The object layer (``bpf_object__open_file`` / ``__load`` / ``bpf_program__attach``)
loads a clang ``-target bpf -g`` object with CO-RE relocations against /sys/kernel/btf/vmlinux and
attaches its programs by section name (``tp_btf/...``, ``tracepoint/...``), which is what the
in-kernel monitor needs. Every fd and link is owned by a Python object with ``close()`` and a
context manager, so nothing stays loaded after a run or a crash of the caller (the kernel frees a
program when its last fd closes, which also happens when the process dies).
"""

from __future__ import annotations

import ctypes
import errno
import os

from iotbpf.ebpf.errors import IotbpfError

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_PROG_TYPE_SYSCALL = 31
BPF_F_SLEEPABLE = 1 << 4
BTF_PATH = "/sys/kernel/btf/vmlinux"
LOG_SIZE = 1 << 22

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


class KernelUnavailable(IotbpfError):
    """The running kernel cannot be used (no permission, no BTF, no libbpf); the text is one line."""


class KernelError(IotbpfError):
    """A bpf() operation failed; ``errno`` and, for a rejected program, the verifier ``log``."""

    def __init__(self, message: str, err: int = 0, log: str = ""):
        IotbpfError.__init__(self, message)
        self.errno = err
        self.log = log

    def reason(self) -> str:
        """The verifier's own one-line reason (the last meaningful line of its log)."""
        lines = [ln.strip() for ln in self.log.splitlines() if ln.strip()]
        skip = ("processed ", "verification time", "stack depth", "mark_precise", "Func#")
        for line in reversed(lines):
            if not line.startswith(skip) and not line[:1].isdigit():
                return line
        return lines[-1] if lines else os.strerror(self.errno) if self.errno else str(self)


class _ProgLoadOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("attempts", ctypes.c_int), ("expected_attach_type", ctypes.c_int),
                ("prog_btf_fd", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_ifindex", ctypes.c_uint32), ("kern_version", ctypes.c_uint32),
                ("attach_btf_id", ctypes.c_uint32), ("attach_prog_fd", ctypes.c_uint32),
                ("attach_btf_obj_fd", ctypes.c_uint32), ("fd_array", ctypes.c_void_p),
                ("func_info", ctypes.c_void_p), ("func_info_cnt", ctypes.c_uint32),
                ("func_info_rec_size", ctypes.c_uint32), ("line_info", ctypes.c_void_p),
                ("line_info_cnt", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32), ("log_buf", ctypes.c_char_p)]


class _MapCreateOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("btf_fd", ctypes.c_uint32), ("btf_key_type_id", ctypes.c_uint32),
                ("btf_value_type_id", ctypes.c_uint32), ("btf_vmlinux_value_type_id", ctypes.c_uint32),
                ("inner_map_fd", ctypes.c_uint32), ("map_flags", ctypes.c_uint32), ("map_extra", ctypes.c_uint64),
                ("numa_node", ctypes.c_uint32), ("map_ifindex", ctypes.c_uint32)]


class _TestRunOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p),
                ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
                ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int), ("duration", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32)]


_LIB = None
_LIB_ERROR = None


def _setup(lib) -> None:
    vp, i, u32, sz, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_char_p
    sigs = {
        "bpf_prog_load": (i, [i, cp, cp, vp, sz, ctypes.POINTER(_ProgLoadOpts)]),
        "bpf_map_create": (i, [i, cp, u32, u32, u32, ctypes.POINTER(_MapCreateOpts)]),
        "bpf_map_lookup_elem": (i, [i, vp, vp]),
        "bpf_map_update_elem": (i, [i, vp, vp, ctypes.c_uint64]),
        "bpf_map_delete_elem": (i, [i, vp]),
        "bpf_map_get_next_key": (i, [i, vp, vp]),
        "bpf_map_lookup_batch": (i, [i, vp, vp, vp, vp, ctypes.POINTER(u32), vp]),
        "bpf_iter_create": (i, [i]),
        "bpf_link__fd": (i, [vp]),
        "libbpf_num_possible_cpus": (i, []),
        "bpf_prog_test_run_opts": (i, [i, ctypes.POINTER(_TestRunOpts)]),
        "bpf_prog_get_next_id": (i, [u32, ctypes.POINTER(u32)]),
        "bpf_prog_get_fd_by_id": (i, [u32]),
        "bpf_obj_get_info_by_fd": (i, [i, vp, ctypes.POINTER(u32)]),
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__load": (i, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_program__name": (cp, [vp]),
        "bpf_program__section_name": (cp, [vp]),
        "bpf_program__attach": (vp, [vp]),
        "bpf_program__set_log_level": (i, [vp, u32]),
        "bpf_program__set_log_buf": (i, [vp, cp, sz]),
        "bpf_program__set_autoload": (i, [vp, ctypes.c_bool]),
        "bpf_link__destroy": (i, [vp]),
        "bpf_program__fd": (i, [vp]),
        "bpf_enable_stats": (i, [i]),
        "bpf_map__fd": (i, [vp]),
        "bpf_map__key_size": (u32, [vp]),
        "bpf_map__value_size": (u32, [vp]),
        "libbpf_get_error": (ctypes.c_long, [vp]),
        "libbpf_set_print": (vp, [vp]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    lib.libbpf_set_print(None)  # libbpf's own warnings would go to stderr: errors are raised instead


def lib():
    """The loaded libbpf (KernelUnavailable when libbpf.so.1 is not installed)."""
    global _LIB, _LIB_ERROR
    if _LIB is None and _LIB_ERROR is None:
        for name in ("libbpf.so.1", "libbpf.so"):
            try:
                handle = ctypes.CDLL(name, use_errno=True)
            except OSError as exc:
                _LIB_ERROR = "libbpf not found (%s): install libbpf1" % exc
                continue
            try:
                _setup(handle)
            except AttributeError as exc:
                _LIB_ERROR = "libbpf is too old (%s): need libbpf >= 1.0" % exc
                continue
            _LIB, _LIB_ERROR = handle, None
            break
    if _LIB is None:
        raise KernelUnavailable(_LIB_ERROR)
    return _LIB


def _capabilities() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def unavailable_reason(need_btf: bool = True) -> str | None:
    """None when this process can load eBPF into the running kernel, else one line saying why not."""
    caps = _capabilities()
    if not caps & (1 << CAP_SYS_ADMIN) and not caps & (1 << CAP_BPF):
        return "loading eBPF into the kernel needs root or CAP_BPF (this process has neither)"
    if need_btf and not os.path.exists(BTF_PATH):
        return "the kernel has no BTF (%s missing): CO-RE programs cannot be loaded" % BTF_PATH
    try:
        lib()
    except KernelUnavailable as exc:
        return str(exc)
    try:
        Map(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "iotbpf_probe").close()
    except KernelError as exc:
        return "the bpf() syscall is refused here (%s)" % os.strerror(exc.errno)
    return None


def require(need_btf: bool = True) -> None:
    reason = unavailable_reason(need_btf)
    if reason is not None:
        raise KernelUnavailable(reason)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = -ret if ret < 0 else ctypes.get_errno()
        raise KernelError("%s: %s" % (what, os.strerror(err)), err)
    return ret


class Map:
    """A map created by fd (``bpf_map_create``), or wrapping a loaded object's map fd (not owned)."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int, name: str = "iotbpf",
                 fd: int | None = None, flags: int = 0):
        self.key_size = key_size
        self.value_size = value_size
        self.owned = fd is None
        if fd is None:
            opts = _MapCreateOpts()
            opts.sz = ctypes.sizeof(_MapCreateOpts)
            opts.map_flags = flags
            safe = "".join(c if c.isalnum() or c in "_." else "_" for c in name)[:15]
            fd = _check(lib().bpf_map_create(map_type, safe.encode(), key_size, value_size, max_entries,
                                             ctypes.byref(opts)), "map create")
        self.fd = fd

    def lookup(self, key: bytes, value_size: int | None = None) -> bytes | None:
        """The value at ``key`` (``value_size``: all CPUs' copies of a per-CPU map), None when absent."""
        value = ctypes.create_string_buffer(value_size or self.value_size)
        ret = lib().bpf_map_lookup_elem(self.fd, bytes(key), value)
        if ret == -errno.ENOENT:
            return None
        _check(ret, "map lookup")
        return value.raw

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        if len(value) != self.value_size or len(key) != self.key_size:
            raise KernelError("map update: key/value of %d/%d bytes, map wants %d/%d" % (
                len(key), len(value), self.key_size, self.value_size))
        _check(lib().bpf_map_update_elem(self.fd, bytes(key), bytes(value), flags), "map update")

    def delete(self, key: bytes) -> bool:
        ret = lib().bpf_map_delete_elem(self.fd, bytes(key))
        if ret == -errno.ENOENT:
            return False
        _check(ret, "map delete")
        return True

    def keys(self) -> list:
        out = []
        prev = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            ret = lib().bpf_map_get_next_key(self.fd, prev, nxt)
            if ret == -errno.ENOENT:
                return out
            _check(ret, "map next key")
            out.append(nxt.raw)
            prev = nxt.raw
            if len(out) > 1 << 22:
                return out

    def items_batch(self, per_cpu: bool = False, chunk: int = 256) -> list:
        """Every (key, value), a chunk of keys per bpf() call (BPF_MAP_LOOKUP_BATCH) instead of two calls
        per key; a per-CPU map's value is every possible CPU's copy, each padded to 8 bytes, one after
        another. Falls back to ``items()`` on kernels without batch lookup."""
        step = (self.value_size + 7) & ~7
        value_size = step * possible_cpus() if per_cpu else self.value_size
        keys = ctypes.create_string_buffer(self.key_size * chunk)
        values = ctypes.create_string_buffer(value_size * chunk)
        cursor = [ctypes.create_string_buffer(max(8, self.key_size)) for _ in range(2)]
        out = []
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            ret = lib().bpf_map_lookup_batch(self.fd, None if first else cursor[0], cursor[1], keys, values,
                                             ctypes.byref(count), None)
            if ret < 0 and ret != -errno.ENOENT:
                if first and ret in (-errno.EINVAL, -errno.ENOTSUP, -errno.EOPNOTSUPP, -524):
                    return [(k, v) for k, v in ((k, self.lookup(k, value_size)) for k in self.keys()) if v is not None]
                _check(ret, "map lookup batch")
            kraw, vraw = keys.raw, values.raw
            for n in range(count.value):
                out.append((kraw[n * self.key_size:(n + 1) * self.key_size],
                            vraw[n * value_size:(n + 1) * value_size]))
            if ret == -errno.ENOENT:
                return out
            first = False
            cursor.reverse()

    def items(self) -> list:
        out = []
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:  # deleted between the two calls
                out.append((key, value))
        return out

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Prog:
    """A loaded program fd; ``test_run`` runs it once through BPF_PROG_TEST_RUN."""

    def __init__(self, fd: int):
        self.fd = fd

    def test_run(self, ctx: bytes | None = None, data: bytes | None = None) -> tuple[int, bytes | None]:
        """(retval, ctx): r0's low 32 bits and, for a syscall program, its context afterwards.

        ``repeat`` stays 0 (one run): syscall programs refuse any other value."""
        opts = _TestRunOpts()
        opts.sz = ctypes.sizeof(_TestRunOpts)
        keep = []
        out = None
        if ctx:  # a syscall program's context is copied back into ctx_in (ctx_out must stay unset)
            out = ctypes.create_string_buffer(bytes(ctx), len(ctx))
            keep.append(out)
            opts.ctx_in, opts.ctx_size_in = ctypes.cast(out, ctypes.c_void_p), len(ctx)
        if data:
            din = ctypes.create_string_buffer(bytes(data), len(data))
            keep.append(din)
            opts.data_in, opts.data_size_in = ctypes.cast(din, ctypes.c_void_p), len(data)
        _check(lib().bpf_prog_test_run_opts(self.fd, ctypes.byref(opts)), "test run")
        return opts.retval, (out.raw if out is not None else None)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_program(code: bytes, prog_type: int = BPF_PROG_TYPE_SYSCALL, name: str = "iotbpf",
                 flags: int = 0, log: bool = True, fd_array=None) -> Prog:
    """Load raw instructions; KernelError with the verifier's log when the kernel rejects them.

    ``fd_array``: map fds that ``lddw`` with BPF_PSEUDO_MAP_IDX(_VALUE) refers to by index."""
    if len(code) % 8 or not code:
        raise KernelError("program of %d bytes is not whole instructions" % len(code), errno.EINVAL)
    opts = _ProgLoadOpts()
    opts.sz = ctypes.sizeof(_ProgLoadOpts)
    opts.prog_flags = flags
    if fd_array:
        fds = (ctypes.c_int * len(fd_array))(*fd_array)
        opts.fd_array = ctypes.cast(fds, ctypes.c_void_p)
    buf = ctypes.create_string_buffer(code, len(code))
    license_ = b"GPL"
    fd = lib().bpf_prog_load(prog_type, name.encode()[:15], license_, buf, len(code) // 8, ctypes.byref(opts))
    if fd >= 0:
        return Prog(fd)
    err = -fd
    text = ""
    if log and err in (errno.EACCES, errno.EINVAL, errno.E2BIG, errno.ENOSPC):
        logbuf = ctypes.create_string_buffer(LOG_SIZE)
        opts.log_level, opts.log_size, opts.log_buf = 1, LOG_SIZE, ctypes.cast(logbuf, ctypes.c_char_p)
        fd = lib().bpf_prog_load(prog_type, name.encode()[:15], license_, buf, len(code) // 8,
                                 ctypes.byref(opts))
        if fd >= 0:  # accepted with the log on (a racy limit): keep it
            return Prog(fd)
        text = logbuf.value.decode("utf-8", "replace")
    error = KernelError("the kernel rejected the program: %s" % os.strerror(err), err, text)
    if text:
        error.args = ("the kernel rejected the program: %s" % error.reason(),)
    raise error


class Object:
    """A clang-compiled BPF object opened, CO-RE-relocated and loaded by libbpf; attach, read maps, close."""

    def __init__(self, path: str, skip: tuple = ()):
        self._obj = None
        self.links = []
        self.link_of = {}
        obj = lib().bpf_object__open_file(os.fsencode(path), None)
        if not obj or lib().libbpf_get_error(obj):
            raise KernelError("cannot open BPF object %s: %s" % (path, os.strerror(ctypes.get_errno() or errno.EINVAL)))
        self._obj = obj
        self.programs = {}
        prog = lib().bpf_object__next_program(obj, None)
        while prog:
            self.programs[lib().bpf_program__name(prog).decode()] = prog
            prog = lib().bpf_object__next_program(obj, prog)
        for name in skip:  # optional programs whose hook this kernel lacks
            if name in self.programs:
                lib().bpf_program__set_autoload(self.programs.pop(name), False)
        self._logs = {}
        for name, prog in self.programs.items():
            buf = ctypes.create_string_buffer(1 << 20)
            self._logs[name] = buf
            lib().bpf_program__set_log_buf(prog, buf, len(buf))
        ret = lib().bpf_object__load(obj)
        if ret < 0:
            log = "\n".join(b.value.decode("utf-8", "replace") for b in self._logs.values() if b.value)
            self.close()
            error = KernelError("cannot load %s: %s" % (os.path.basename(path), os.strerror(-ret)), -ret, log)
            if log:
                error.args = ("cannot load %s: %s" % (os.path.basename(path), error.reason()),)
            raise error

    def attach(self, name: str) -> None:
        link = lib().bpf_program__attach(self.programs[name])
        if not link or lib().libbpf_get_error(link):
            err = ctypes.get_errno() or errno.EINVAL
            raise KernelError("cannot attach %s: %s" % (name, os.strerror(err)), err)
        self.links.append(link)
        self.link_of[name] = link

    def read_iter(self, name: str, size: int = 1 << 16) -> bytes:
        """Run an attached iterator program (``iter/...``) once: everything it writes, from one fd."""
        fd = _check(lib().bpf_iter_create(lib().bpf_link__fd(self.link_of[name])), "iterator create")
        try:
            parts = []
            while True:
                part = os.read(fd, size)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        finally:
            os.close(fd)

    def attach_all(self) -> list:
        """Attach every loaded program; the names that could not be attached, with the reason."""
        failed = []
        for name in self.programs:
            try:
                self.attach(name)
            except KernelError as exc:
                failed.append((name, str(exc)))
        return failed

    def map(self, name: str) -> Map:
        handle = lib().bpf_object__find_map_by_name(self._obj, name.encode())
        if not handle:
            raise KernelError("no map %r in the object" % name)
        return Map(0, lib().bpf_map__key_size(handle), lib().bpf_map__value_size(handle), 0,
                   fd=lib().bpf_map__fd(handle))

    def close(self) -> None:
        for link in self.links:
            lib().bpf_link__destroy(link)
        self.links = []
        self.link_of = {}
        if self._obj:
            lib().bpf_object__close(self._obj)
        self._obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- interpreter shutdown: the kernel frees fds at exit anyway
            pass


_POSSIBLE_CPUS = None


def possible_cpus() -> int:
    """The number of possible CPUs (the copies a per-CPU map keeps)."""
    global _POSSIBLE_CPUS
    if _POSSIBLE_CPUS is None:
        n = lib().libbpf_num_possible_cpus()
        _POSSIBLE_CPUS = n if n > 0 else os.cpu_count() or 1
    return _POSSIBLE_CPUS


def own_bpf_fds() -> dict:
    """This process's open bpf objects by kind (``bpf-prog``, ``bpf-map``, ``bpf_link``), from /proc/self/fd."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target.startswith("anon_inode:bpf"):
            kind = target[len("anon_inode:"):].strip("[]")
            out[kind] = out.get(kind, 0) + 1
    return out


def loaded_program_names() -> list:
    """Names of every program loaded in the kernel (bpftool prog's view, through libbpf)."""
    names = []
    ident = ctypes.c_uint32(0)
    while lib().bpf_prog_get_next_id(ident.value, ctypes.byref(ident)) == 0:
        fd = lib().bpf_prog_get_fd_by_id(ident.value)
        if fd < 0:
            continue
        info = ctypes.create_string_buffer(256)
        size = ctypes.c_uint32(256)
        try:
            if lib().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)) == 0:
                names.append(info.raw[64:80].split(b"\0")[0].decode("ascii", "replace"))
        finally:
            os.close(fd)
    return names
