"""Apps for the API: find a bundled app or an app folder, load its programs, merge the simulated
devices of several apps, read an events file, and build an app's C source with clang."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from iotbpf import resources
from iotbpf.api.clang import path_map_flags
from iotbpf.ebpf.errors import IotbpfError, LoadError, RuntimeFailure
from iotbpf.kernel import manifest as kernel_manifest
from iotbpf.platforms.sim.trace import parse_events


def find_app(app: str | os.PathLike) -> Path:
    """The app.json of a bundled app name (``sensor_node``), an app folder or an app.json path."""
    path = resources.resolve("apps", str(app))
    if path.is_dir():
        path = path / "app.json"
    if not path.exists():
        raise LoadError("no app.json in %s" % path.parent)
    return path


def load_app_programs(manifest_path: Path, prefer: str = "object") -> tuple:
    """(manifest, {section: Program}) for an app: from its object (ELF, host) or its .ibpf bundle."""
    from iotbpf.kernel import app as _kernel_app

    return _kernel_app.load(str(manifest_path), prefer)


def merged_sim(manifests: list) -> dict | None:
    """One node's simulated devices: every app's ``sim`` section together (sensors and GPIO
    pins by id, radio traffic appended, link and usage settings from the first app that has
    them), so an added app keeps its devices. A device two apps define differently is an error;
    an app's trace files stay relative to its own folder."""
    sims = [(m, m.sim) for m in manifests if m.sim]
    if len(sims) <= 1:
        return sims[0][1] if sims else (manifests[0].sim if manifests else None)
    out: dict = {}
    owners: dict = {}
    for m, sim in sims:
        if not isinstance(sim, dict):
            return manifests[0].sim  # SimPlatform reports the malformed section
        for kind, ident in (("sensors", "id"), ("gpio", "pin")):
            for entry in sim.get(kind, ()):
                if isinstance(entry, dict) and "file" in entry and not str(entry["file"]).startswith("/"):
                    entry = dict(entry, file=m.path(entry["file"]))
                key = (kind, entry.get(ident, 0) if isinstance(entry, dict) else None)
                if key in owners:
                    if owners[key][1] != entry:
                        raise LoadError("apps %s and %s both define sim %s %s %r, differently"
                                        % (owners[key][0], m.name, kind, ident, key[1]))
                    continue
                owners[key] = (m.name, entry)
                out.setdefault(kind, []).append(entry)
        for output in sim.get("outputs", ()):
            if output not in out.setdefault("outputs", []):
                out["outputs"].append(output)
        radio = sim.get("radio")
        if isinstance(radio, dict):
            merged = out.setdefault("radio", {})
            for key, value in radio.items():
                if key == "traffic":
                    merged.setdefault("traffic", []).extend(value)
                else:
                    merged.setdefault(key, value)
        if "usage" in sim and "usage" not in out:
            out["usage"] = sim["usage"]
        for key, value in sim.items():
            if key not in ("sensors", "gpio", "outputs", "radio", "usage"):
                out.setdefault(key, value)
    return out


def read_events(events: list | tuple | str | os.PathLike) -> list:
    """Events for a node: a list as given, or the events file (JSON lines) at a path."""
    if isinstance(events, (list, tuple)):
        return list(events)
    path = str(events)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError("cannot read events file %s: %s" % (path, exc.strerror)) from None
    except UnicodeDecodeError:
        raise LoadError("events file %s is not UTF-8 text" % path) from None
    try:
        return parse_events(text, path)
    except ValueError as exc:
        raise LoadError(str(exc)) from None


def build_app(app: str | os.PathLike, output: str | os.PathLike | None = None, clang: str | None = None,
              cpu: str = "v3") -> Path:
    """Compile an app's C source to its object with clang (-O2 -g -target bpf), and its .ibpf
    bundle when the manifest names one (not with an explicit ``output``); returns the object's path."""
    manifest_path = find_app(app)
    m = kernel_manifest.load(str(manifest_path))
    source = m.path(m.source) if m.source else str(manifest_path.parent / (m.name + ".c"))
    if not os.path.exists(source):
        raise LoadError("app %s: source %s not found" % (m.name, source))
    out = Path(output) if output else Path(m.path(m.object or (m.name + ".o")))
    from iotbpf.api.clang import find_clang  # one discovery for build and Program.from_c: clang-19 first

    compiler = clang or find_clang()
    if compiler is None:
        raise IotbpfError("clang-19 not found (nor a clang 17 or newer): install clang-19, or pass --clang PATH")
    include = resources.data_root("apps") / "include"
    cmd = [compiler, "-O2", "-g", "-target", "bpf", "-mcpu=" + cpu, *path_map_flags(source, [include]),
           "-I", str(include), "-c", source, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["clang failed"])[0]
        raise RuntimeFailure("clang failed for %s: %s" % (source, first))
    if m.bundle and not output:
        from iotbpf.ebpf.loader.bundle import save_bundle
        from iotbpf.ebpf.loader.elf import load_elf_object

        save_bundle(load_elf_object(str(out)), m.path(m.bundle))
    return out
