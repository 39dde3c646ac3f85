"""Device images (host side, CPython): an app verified, relocated and pre-decoded for the device
runtime, with map layouts, hook table, energy parameters and a tag. What the device cannot run is
refused here, with the reason, never on the board; the format is in docs/mcu.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

from iotbpf.ebpf.errors import IotbpfError, LoadError

MAGIC = b"IDIM"
VERSION = 1
FLAG_SIGNED = 1
MAP_REGION_BASE = 3
MAX_MAP_BYTES = 0xFFFF
# map types the device runtime has (iotbpf/device/maps.py)
DEVICE_MAP_TYPES = {1: "hash", 2: "array", 9: "lru_hash", 22: "queue"}
# helpers the device runtime has (iotbpf/device/node.py Node._call)
DEVICE_HELPERS = {1, 2, 3, 5, 87, 88, 89, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006, 0x1007,
                  0x1008, 0x1009}
DEFAULT_BITRATE = 250000
YEAR_S = 365 * 86400  # as iotbpf/energy/battery.py counts self-discharge
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


class ImageError(IotbpfError):
    """The app cannot run on the device runtime (the message says what it uses)."""

    exit_code = 2


def _opcode_ok(op: int) -> bool:
    cls = op & 7
    if cls in (4, 7):
        code = op & 0xF0
        return code <= 0xD0 and not (code == 0xD0 and cls == 7 and op & 8)
    if cls in (5, 6):
        if op & 0xF0 in (0x80, 0x90):  # call and exit: JMP class only, no register form (callx)
            return cls == 5 and not op & 8
        return (op & 0xF0) <= 0xD0
    if cls == 1:
        return op & 0xE0 in (0x60, 0x80)
    if cls == 2:
        return op & 0xE0 == 0x60
    if cls == 3:
        return op & 0xE0 == 0x60 or (op & 0xE0 == 0xC0 and op & 0x18 in (0x00, 0x18))
    return op == 0x18


def link_program(program, map_index: dict, where: str) -> list[int]:
    """The program in the device interpreter's form: three ints per instruction (lddw fused
    into one, map references resolved to region addresses, jumps to absolute indices)."""
    insns = program.insns
    entry_of = {}
    n = 0
    pc = 0
    while pc < len(insns):
        entry_of[pc] = n
        n += 1
        pc += 2 if insns[pc].opcode == 0x18 else 1
    entry_of[len(insns)] = n
    code: list[int] = []
    for pc in sorted(entry_of):
        if pc == len(insns):
            break
        ins = insns[pc]
        op = ins.opcode
        at = "%s: pc %d (opcode 0x%02x)" % (where, pc, op)
        if not _opcode_ok(op):
            raise ImageError("%s: the device interpreter has no such instruction" % at)
        off = ins.off
        imm = ins.imm
        if op == 0x18:
            if ins.src == 0:
                imm &= M64
            elif ins.src in (1, 2):
                spec = getattr(program.maps[ins.imm & M32], "spec", program.maps[ins.imm & M32])
                if ins.src == 2 and spec.type != 2:
                    raise ImageError("%s: a direct value address (lddw map_value) needs an array map, %s is not"
                                     % (at, spec.name))
                region = (MAP_REGION_BASE + map_index[spec.name]) << 16
                imm = region if ins.src == 1 else region + (ins.imm >> 32)
            else:
                raise ImageError("%s: lddw source %d is not supported on the device" % (at, ins.src))
        elif op & 7 in (5, 6):
            code_ = op & 0xF0
            if code_ == 0x80:
                if ins.src != 0 or imm not in DEVICE_HELPERS:
                    raise ImageError("%s: %s is not available on the device" % (
                        at, "a bpf-to-bpf call" if ins.src else "helper %d" % imm))
            elif code_ != 0x90:
                target = pc + 1 + (imm if (op == 0x06) else off)
                if target not in entry_of:
                    raise ImageError("%s: jump into the middle of an instruction" % at)
                off = entry_of[target] * 3
        code += [op | ins.dst << 8 | ins.src << 12, off, imm]
    return code


def _energy(board) -> dict:
    """The board's energy parameters for the device ledger (iotbpf/device/energy.py)."""
    floor = 0.0
    for model in board.models.values():
        floor += model.power_w(model.default_state)
    cpu = board.component(board.cpu["component"])
    params = {"floor_w": floor,
              "cpu_w": cpu.power_w(board.cpu["run_state"]) - cpu.power_w(board.cpu["sleep_state"]),
              "ns_per_insn": board.ns_per_insn, "tx_w": 0.0, "sensor_j": 0.0}
    if board.radio is not None:
        radio = board.component(board.radio["component"])
        params["tx_w"] = radio.power_w(board.radio["tx_state"]) - radio.power_w(board.radio["sleep_state"])
    comp = board.sensor_component(0)
    if comp is not None:
        model = board.component(comp)
        busy = [s for s in model.states if s != model.default_state]
        if busy and model.param("measure_s"):
            params["sensor_j"] = (model.power_w(busy[0]) - model.power_w(model.default_state)) \
                * model.param("measure_s")
    battery = board.battery_spec or {}
    params["capacity_j"] = battery.get("capacity_mah", 0) * 3.6 * battery.get("voltage_v", board.supply_voltage_v)
    params["soc0"] = battery.get("initial_soc", 1.0)
    params["leak_per_ns"] = battery.get("self_discharge_per_year", 0.0) / (YEAR_S * 1e9)
    params["cutoff"] = battery.get("cutoff_soc", 0.0)
    if params["capacity_j"] <= 0:
        raise ImageError("board %s has no battery capacity for the state-of-charge estimate" % board.name)
    return params


def build_payload(manifest, programs: dict, board=None, device_config: dict | None = None,
                  counter: int = 0) -> dict:
    """The image payload of an app whose programs (section -> Program) the host verified."""
    from iotbpf.kernel import runtime, wellknown
    from iotbpf.kernel.hooks import HOOKS

    map_index: dict = {}
    maps = []
    for _hook, section in manifest.hooks:
        for spec in programs[section].maps:
            spec = getattr(spec, "spec", spec)
            if spec.name in map_index:
                continue
            if spec.name in wellknown.WELL_KNOWN_NAMES:
                raise ImageError("app %s: the well-known map %s is not on the device" % (manifest.name, spec.name))
            if spec.type not in DEVICE_MAP_TYPES:
                raise ImageError("app %s: map %s has type %d; the device has %s" % (
                    manifest.name, spec.name, spec.type, ", ".join(sorted(DEVICE_MAP_TYPES.values()))))
            if spec.max_entries * spec.value_size > MAX_MAP_BYTES:
                raise ImageError("app %s: map %s needs %d bytes; a device map holds at most %d" % (
                    manifest.name, spec.name, spec.max_entries * spec.value_size, MAX_MAP_BYTES))
            map_index[spec.name] = len(maps)
            data = bytes(spec.data).hex() if spec.data is not None and any(spec.data) else None
            maps.append([spec.name, spec.type, spec.key_size, spec.value_size, spec.max_entries, data])
    progs = []
    ctx = {}
    for hook, section in manifest.hooks:
        progs.append([hook, section, link_program(programs[section], map_index, "%s/%s" % (manifest.name, section)),
                      manifest.budget])
        h = HOOKS[hook]
        ctx[hook] = [h.size, [[f.name, f.offset, f.size] for f in h.fields]]
    config = device_config or {}
    return {"version": VERSION, "app": manifest.name, "counter": counter, "maps": maps, "progs": progs,
            "ctx": ctx, "timers": [[tid, start, period] for tid, start, period, _jitter in manifest.timer_specs],
            "faults": [manifest.fault_max, manifest.fault_window_ns],
            "policy": {"txq": runtime.TX_QUEUE_LIMIT_BYTES, "battery_ns": runtime.BATTERY_REPORT_NS,
                       "low": runtime.LOW_PERMILLE, "critical": runtime.CRITICAL_PERMILLE},
            "bitrate": config.get("airtime_bitrate", DEFAULT_BITRATE), "device": config,
            "energy": _energy(board) if board is not None else None}


def pack(payload: dict, key: bytes | None = None) -> bytes:
    """Image bytes: header, JSON payload, then HMAC-SHA256(key) or SHA-256 of both."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = MAGIC + struct.pack("<HHI", VERSION, FLAG_SIGNED if key else 0, len(body)) + body
    tag = hmac.new(key, head, hashlib.sha256).digest() if key else hashlib.sha256(head).digest()
    return head + tag


def read_key(path: str | Path) -> bytes:
    """A node key file: hex, at least 16 bytes (the OTA command key format)."""
    try:
        key = bytes.fromhex(Path(path).read_text().strip())
    except OSError as exc:
        raise IotbpfError("cannot read key %s: %s" % (path, exc.strerror)) from None
    except ValueError:
        raise IotbpfError("key %s is not hex" % path) from None
    if len(key) < 16:
        raise IotbpfError("key %s: at least 16 bytes are needed" % path)
    mode = Path(path).stat().st_mode & 0o777
    if mode & 0o077:   # as the node's own key file (report/remote.py load_key)
        raise IotbpfError("key file %s is readable or writable by others (mode %03o); run: chmod 600 %s"
                          % (path, mode, path))
    return key


def load_app(app: str):
    """(manifest, {section: Program}) of an app, from its compiled object or its bundle."""
    from iotbpf.kernel import manifest as manifest_module
    from iotbpf.resources import resolve

    app_path = resolve("apps", app)
    manifest_path = app_path / "app.json" if app_path.is_dir() else app_path
    manifest = manifest_module.load(str(manifest_path))
    if manifest.object is not None and Path(manifest.path(manifest.object)).exists():
        from iotbpf.ebpf.loader.elf import load_elf_object

        programs = load_elf_object(manifest.path(manifest.object)).programs
    elif manifest.bundle is not None:
        from iotbpf.ebpf.loader.bundle import load_bundle_object

        programs = load_bundle_object(manifest.path(manifest.bundle)).programs
    else:
        raise LoadError("app %s: linking needs the compiled object or a bundle (run `iotbpf build`)" % manifest.name)
    for _hook, section in manifest.hooks:
        if section not in programs:
            raise LoadError("app %s: no section %r" % (manifest.name, section))
    return manifest, programs


def link(app: str, board: str | None = None, device_config: dict | None = None, key: bytes | None = None,
         counter: int = 0, timer_period_ns: int | None = None) -> bytes:
    """Verify every program of ``app`` on the host, then link and sign its device image.
    ``timer_period_ns`` replaces every manifest timer's start and period (tests, benchmarks)."""
    from iotbpf.ebpf.verifier import verify
    from iotbpf.kernel.hooks import HOOKS
    from iotbpf.kernel.runtime import Runtime

    manifest, programs = load_app(app)
    if timer_period_ns is not None:
        manifest.timer_specs = [(t[0], timer_period_ns, timer_period_ns, 0) for t in manifest.timer_specs]
    helpers = Runtime().helper_table()
    for hook, section in manifest.hooks:
        verify(programs[section], helpers=helpers, hook=HOOKS[hook].layout(), budget=manifest.budget)
    board_obj = None
    if board is not None:
        from iotbpf.energy.board import load_board

        board_obj = load_board(board)
    return pack(build_payload(manifest, programs, board_obj, device_config, counter), key)
