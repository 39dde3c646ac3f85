"""Loading apps onto a node: programs bound to the app's and the node's well-known maps,
verified against their hook (tail-call targets included), attached; pinned maps; over-the-air
program replacement. A part of Runtime (kernel/runtime.py); MicroPython-compatible.
"""

from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import LoadError, VerifierError
from iotbpf.kernel import helpers as iot_helpers
from iotbpf.kernel import wellknown
from iotbpf.kernel.appstate import App, Attached
from iotbpf.kernel.hooks import HOOKS

MAX_APPS = 16


class Loader:
    """Runtime's loading methods (Runtime inherits them; they use its apps, hooks and maps)."""

    def helper_table(self):
        """Linux helpers (iotbpf.ebpf.helpers) plus the IoT helpers, built once per node."""
        if self._helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            table = linux_helpers()
            iot_helpers.register(table)
            self._helpers = table
        return self._helpers

    def load_app(self, manifest, programs, maps=None):
        """Attach an app: ``programs`` maps section name -> Program; ``maps`` name -> Map (the
        programs' own maps; well-known names are rebound to the node's shared instances).

        Every program is verified against its hook's context layout and the helper table before
        anything is attached; a rejected program raises VerifierError and nothing is loaded.
        """
        if len(self.apps) >= MAX_APPS:
            raise LoadError("too many apps on one node (at most %d)" % MAX_APPS)
        for other in self.apps:
            if other.name == manifest.name:
                raise LoadError("an app named %s is already loaded" % manifest.name)
        app = App(self, len(self.apps) + 1, manifest, dict(maps or {}))
        for name in wellknown.WELL_KNOWN_NAMES:
            if name in app.maps:
                app.maps[name] = self.shared_maps[name]
        table = self.helper_table()
        from iotbpf.ebpf.maps import MapBudget

        budget = MapBudget(self.map_budget_bytes, "app " + manifest.name)
        plan = []
        for hook_name, section in manifest.hooks:
            program = programs.get(section)
            if program is None:
                raise LoadError("app %s: no program in section %r for hook %s (sections: %s)" % (
                    manifest.name, section, hook_name, ", ".join(sorted(programs)) or "none"))
            program = _rebind_maps(program, app.maps, self.shared_maps, budget)
            hook = HOOKS[hook_name]
            if self.verify:
                self._verify(app, hook, section, program, table)
            plan.append((hook, section, program))
        self._fill_prog_arrays(app, programs, plan, budget, table)
        for hook, section, program in plan:
            vm = self._make_vm(program, table, app)
            att = Attached(app, hook, section, program, vm, self.hook_stats[hook.name])
            app.attached.append(att)
            self.hooks[hook.name].append(att)
        self.apps.append(app)
        self._timer_atts = {}
        if self.pin_dir is not None and self._restore_pinned(app):
            self.boot_reason = 1
        if self.booted:
            self._start_app(app)
        return app

    def _fill_prog_arrays(self, app, programs, plan, budget, table):
        """Bind the app's other programs to its maps and put them into the prog_array slots the
        object declares. A prog_array serves the programs of ONE hook: the hook of the attached
        programs that tail-call through it (following chains of tail calls); every program placed
        in it is verified against that hook's context, and an attached program of another hook,
        or a prog_array used from two hooks, is refused (a tail call keeps the caller's context)."""
        attached = [p for _h, _s, p in plan]
        extra = [p for p in programs.values() if p not in attached]
        app.tail_hooks = {}
        if not any(getattr(m, "get_program", None) is not None for m in app.maps.values()):
            return
        from iotbpf.ebpf.maps import fill_prog_arrays

        for program in extra:
            _rebind_maps(program, app.maps, self.shared_maps, budget)
        fill_prog_arrays(attached + extra, app.maps)
        serves = {}   # prog_array name -> (hook, the section or program whose tail calls set it)
        work = [(hook, section, program) for hook, section, program in plan]
        seen = set()
        while work:
            hook, where, program = work.pop()
            if (id(program), hook.name) in seen:
                continue
            seen.add((id(program), hook.name))
            for m in _prog_arrays_used(program):
                name = m.spec.name
                if name in serves and serves[name][0].name != hook.name:
                    raise VerifierError("app %s: prog_array %s is used for tail calls from hook %s (%s) and "
                                        "hook %s (%s); a prog_array serves the programs of one hook"
                                        % (app.name, name, serves[name][0].name, serves[name][1],
                                           hook.name, where))
                serves.setdefault(name, (hook, where))
                for target in _slot_programs(m):
                    work.append((hook, getattr(target, "name", "?"), target))
        first = plan[0][0]
        verified = {}   # id(extra program) -> hook name it was verified against
        for m in app.maps.values():
            if getattr(m, "get_program", None) is None:
                continue
            hook = serves.get(m.spec.name, (first, None))[0]   # an unused array: the first hook
            app.tail_hooks[m.spec.name] = hook.name
            for target in _slot_programs(m):
                name = getattr(target, "name", "?")
                if target in attached:
                    own = plan[attached.index(target)][0]
                    if own.name != hook.name:
                        raise VerifierError("app %s: program %s is attached to hook %s but sits in prog_array "
                                            "%s, which is tail-called from hook %s (another context)"
                                            % (app.name, name, own.name, m.spec.name, hook.name))
                    continue
                if target not in extra:
                    continue
                done = verified.get(id(target))
                if done is not None and done != hook.name:
                    raise VerifierError("app %s: program %s sits in prog_arrays tail-called from hooks %s and "
                                        "%s; a tail-call target runs with one hook's context"
                                        % (app.name, name, done, hook.name))
                if done is None and self.verify:
                    self._verify(app, hook, name, target, table)
                verified[id(target)] = hook.name

    # ---------------------------------------------------------------- pinned maps

    def _pin_path(self, app, name):
        return "%s/%s/%s.pin" % (self.pin_dir.rstrip("/"), app.name, name)

    def _restore_pinned(self, app):
        """Load the app's maps pinned by a previous run; True if any was restored (a restart)."""
        from iotbpf.ebpf.loader.pin import restore

        restored = False
        for name, m in app.maps.items():
            if name not in self.shared_maps and restore(m, self._pin_path(app, name)):
                restored = True
        return restored

    def pin_maps(self):
        """Save every app map under pin_dir/<app>/<map>.pin (crash-safe), so a restart keeps them."""
        import os

        from iotbpf.ebpf.loader.pin import pin_map

        if self.pin_dir is None:
            return
        for app in self.apps:
            folder = "%s/%s" % (self.pin_dir.rstrip("/"), app.name)
            for part in (self.pin_dir, folder):
                try:
                    os.mkdir(part)
                except OSError:
                    pass
            for name, m in app.maps.items():
                if name not in self.shared_maps:
                    pin_map(m, self._pin_path(app, name))

    def _find_attached(self, app_name, section):
        for app in self.apps:
            if app.name == app_name:
                for att in app.attached:
                    if att.section == section:
                        return app, att
                raise LoadError("app %s has no program in section %r" % (app_name, section))
        raise LoadError("no app named %s on this node" % app_name)

    def verify_program(self, app_name, section, program):
        """Check that ``program`` could replace ``section`` of an app (maps bound, verified for the
        section's hook); raises LoadError/VerifierError, changes nothing. Returns the bound program."""
        from iotbpf.ebpf.maps import MapBudget

        app, att = self._find_attached(app_name, section)
        maps = dict(app.maps)
        budget = MapBudget(self.map_budget_bytes, "app " + app.name)
        # The update's own globals (.rodata/.data/.bss: new constants, new or resized variables)
        # come with it, initialised from its bundle; its other maps bind to the app's by name.
        program = _rebind_maps(program, maps, self.shared_maps, budget, own_globals=True)
        for m in _prog_arrays_used(program):
            serves = getattr(app, "tail_hooks", {}).get(m.spec.name)
            if serves is not None and serves != att.hook.name and any(True for _ in _slot_programs(m)):
                raise VerifierError("prog_array %s holds programs verified for hook %s; a program of hook %s "
                                    "cannot tail-call into them" % (m.spec.name, serves, att.hook.name))
        if self.verify:
            self._verify(app, att.hook, section, program, self.helper_table())
        return program

    def replace_program(self, app_name, section, program):
        """Swap in a new program for an app's section (an over-the-air update): verified first;
        a fresh VM and counters; same position on the hook. Returns the previous Program."""
        program = self.verify_program(app_name, section, program)
        app, att = self._find_attached(app_name, section)
        for m in program.maps:
            name = m.spec.name
            if (name not in app.maps or _is_global(name)) and name not in self.shared_maps:
                app.maps[name] = m   # the running program's globals are the ones `map` commands see
        fresh = Attached(app, att.hook, section, program, self._make_vm(program, self.helper_table(), app),
                         att.stats)
        att.fold()  # its runs stay in the hook's statistics; the program's own go with it
        att.stats._atts.remove(att)
        app.attached[app.attached.index(att)] = fresh
        hook_list = self.hooks[att.hook.name]
        if att in hook_list:
            hook_list[hook_list.index(att)] = fresh
        else:
            hook_list.append(fresh)
        self._timer_atts = {}
        self.events.append({"t_ns": self.clock.now_ns(), "event": "replaced", "app": app.name,
                            "hook": att.hook.name, "section": section})
        return att.program

    def _verify(self, app, hook, section, program, table):
        try:
            from iotbpf.ebpf.verifier import verify
        except ImportError:
            return  # device builds ship without the verifier: programs are verified on the host
        try:
            result = verify(program, helpers=table, hook=hook.layout(), budget=app.budget)
        except VerifierError as exc:
            raise VerifierError("app %s, section %s (hook %s): %s" % (app.name, section, hook.name, exc)) \
                from None
        # what the verifier proved speeds the compiled engine up: accesses proven in bounds run
        # unchecked, and a program whose longest path fits the budget runs without budget checks
        # (unless it can leave its own code through a tail call, which the bound does not cover).
        program.safe_access_pcs = frozenset(result.safe_access_pcs)
        bounded = result.max_path_insns is not None and result.max_path_insns <= app.budget
        program.proven_within_budget = app.budget if bounded and not _calls_any(program, _CHAINING_HELPERS) \
            else None
        program.verified_stack = True  # no read of stack bytes before they are written in the run

    def _make_vm(self, program, table, app):
        proven = self.verify and getattr(program, "proven_within_budget", None) == app.budget
        budget = None if proven else app.budget
        try:
            vm = VM(program, helpers=table, engine=self.engine, budget=budget, env=app.env)
        except LoadError as exc:
            if self.engine != "interp" and "not available" in str(exc):
                vm = VM(program, helpers=table, engine="interp", budget=budget, env=app.env)
            else:
                raise
        # a verified program never sees what an earlier run left on its stack: no need to clear it
        vm.clear_stack = not (self.verify and getattr(program, "verified_stack", False))
        return vm


_CHAINING_HELPERS = (12,)  # bpf_tail_call (bpf_loop callbacks are inside the verifier's bound)


def _prog_arrays_used(program):
    """The prog_array maps ``program`` loads (lddw map_fd/map_idx), i.e. may tail-call through."""
    out = []
    maps = getattr(program, "maps", None) or []
    for insn in program.insns:
        if insn is not None and insn.opcode == 0x18 and insn.src in (1, 5):   # BPF_PSEUDO_MAP_FD/IDX
            k = insn.imm & 0xFFFFFFFF
            if k < len(maps) and getattr(maps[k], "get_program", None) is not None and maps[k] not in out:
                out.append(maps[k])
    return out


def _slot_programs(m):
    """The programs in a prog_array's slots."""
    for index in range(m.spec.max_entries if m.spec.max_entries < 1024 else 1024):
        target = m.get_program(index)
        if target is not None:
            yield target


def _calls_any(program, helper_ids):
    """True if the program calls one of these helpers (a BPF_CALL with src 0 and that imm)."""
    for insn in program.insns:
        if insn is not None and insn.opcode == 0x85 and insn.src == 0 and insn.imm in helper_ids:
            return True
    return False


# -------------------------------------------------------------------- well-known maps

def _make_well_known_maps():
    from iotbpf.ebpf.maps import create_map
    from iotbpf.ebpf.types import MapSpec

    out = {}
    for name, mtype, _key, _value, max_entries, _doc in wellknown.WELL_KNOWN_MAPS:
        spec = MapSpec(name, mtype, wellknown.key_size(name), wellknown.value_size(name), max_entries, 0)
        out[name] = create_map(spec)
    return out


def _is_global(name):
    """A map holding a program's global variables (.rodata, .data, .bss, .data.<name>...)."""
    return name[:1] == "."


def _rebind_maps(program, app_maps, shared, budget, own_globals=False):
    """The program with its map list pointing at the app's map objects: one object per map name
    across the app's programs (created on first use, charged to ``budget``), and the node's
    shared instance for a well-known name. ``own_globals`` (an over-the-air update): the
    program's global-variable maps stay its own, initialised from its object or bundle."""
    from iotbpf.ebpf.maps import create_map

    bound = []
    for m in getattr(program, "maps", None) or []:
        spec = getattr(m, "spec", m)
        name = spec.name
        if own_globals and _is_global(name) and name not in shared:
            bound.append(m if hasattr(m, "spec") else create_map(spec, budget))
            continue
        if name in shared:
            target = shared[name]
            _check_compatible(spec, target.spec)
        else:
            target = app_maps.get(name)
            if target is None:
                target = m if hasattr(m, "spec") else create_map(spec, budget)
                app_maps[name] = target
            else:
                _check_compatible(spec, target.spec)
        bound.append(target)
    program.maps = bound
    return program


def _check_compatible(spec, want):
    if (spec.type, spec.key_size, spec.value_size) != (want.type, want.key_size, want.value_size):
        raise LoadError("map %s: declared twice with different layouts, or unlike the well-known one "
                        "(type %d, key %d, value %d bytes)" % (want.name, want.type, want.key_size,
                                                               want.value_size))
