"""Loading an app's programs: the manifest's ELF object (host, pyelftools) or its .ibpf bundle
(anywhere, MicroPython included), one Program per section the manifest attaches.

It must never guess: a missing section or an absent object/bundle is a LoadError naming it.
"""

import os

from iotbpf.ebpf.errors import LoadError
from iotbpf.kernel import manifest as _manifest


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def load_programs(m, prefer="object"):
    """{section: Program} for manifest ``m``: from its object when it exists and ``prefer`` is
    "object" (or there is no bundle), else from its bundle. The object's programs that no hook
    attaches are included under their function names (tail-call targets)."""
    obj = m.path(m.object) if m.object else None
    bundle = m.path(m.bundle) if m.bundle else None
    use_object = obj is not None and _exists(obj) and (prefer == "object" or bundle is None
                                                       or not _exists(bundle))
    if use_object:
        from iotbpf.ebpf.loader.elf import load_elf_object

        loaded = load_elf_object(obj)
        source = obj
    elif bundle is not None and _exists(bundle):
        from iotbpf.ebpf.loader.bundle import load_bundle_object

        loaded = load_bundle_object(bundle)
        source = bundle
    else:
        raise LoadError("app %s: neither its object nor its bundle exists (run `iotbpf build`)" % m.name)
    programs = {}
    for _hook, section in m.hooks:
        if section not in programs:
            try:
                programs[section] = loaded.program(section)
            except LoadError as exc:
                raise LoadError("app %s: %s: %s" % (m.name, source, exc)) from None
    # the object's other programs (tail-call targets in prog_array maps), under their names
    attached = list(programs.values())
    for name, program in loaded.programs.items():
        if program not in attached and name not in programs:
            programs[name] = program
    return programs


def load(manifest_path, prefer="object"):
    """(Manifest, {section: Program}) for the app whose app.json is ``manifest_path``."""
    m = _manifest.load(manifest_path)
    return m, load_programs(m, prefer)
