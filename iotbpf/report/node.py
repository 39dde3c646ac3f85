"""Remote control of a running node: RuntimeTarget shows one app of a kernel Runtime to the signed
command handler, and remote_control wires it to a Publisher's command topic (docs/mqtt.md).
"""

from __future__ import annotations

import os

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.remote import CommandHandler, counter_path_for, load_key


class RuntimeTarget:
    """One app of a running node, as the command handler sees it."""

    def __init__(self, runtime, app_name: str | None = None):
        self.runtime = runtime
        apps = list(runtime.apps)
        if not apps:
            raise ValueError("the node has no app loaded")
        if app_name is None:
            self.app = apps[0]
        else:
            matches = [a for a in apps if a.name == app_name]
            if not matches:
                raise ValueError("no app named %s on this node" % app_name)
            self.app = matches[0]

    @property
    def maps(self) -> dict:
        return self.app.maps

    @property
    def remote_maps(self):
        return getattr(self.app.manifest, "remote", None)

    @property
    def sections(self) -> list[str]:
        return [section for _hook, section in self.app.manifest.hooks]

    def _attached(self, section: str):
        for att in self.app.attached:
            if att.section == section:
                return att
        raise KeyError(section)

    def program(self, section: str):
        return self._attached(section).program

    def fault_count(self, section: str) -> int:
        return self._attached(section).faults

    def verify_program(self, section: str, program) -> None:
        # An over-the-air program is never trusted unverified, even on a node started without
        # the verifier (Runtime(verify=False) skips it at load time).
        if not getattr(self.runtime, "verify", True):
            raise IotbpfError("this node runs without the verifier; it accepts no program updates")
        try:
            import iotbpf.ebpf.verifier  # noqa: F401
        except ImportError:
            raise IotbpfError("the verifier is not installed here; no program updates") from None
        self.runtime.verify_program(self.app.name, section, program)

    def replace_program(self, section: str, program) -> None:
        self.runtime.replace_program(self.app.name, section, program)


def remote_control(runtime, publisher, key_file: str | os.PathLike,
                   counter_file: str | os.PathLike | None = None,
                   app_name: str | None = None, rollback_faults: int = 3) -> CommandHandler:
    """Accept signed commands for ``publisher.node`` on its command topic.

    Commands arrive on paho's thread and are queued; the node's own loop must call
    ``handler.process_pending()`` between events (it applies them, answers on
    ``/cmd/reply`` and rolls back faulty program updates, reporting on ``/faults``).
    Call before ``publisher.start()`` so the node subscribes to its command topic.
    The last accepted counter is kept beside the key (``<key_file>.counter``) unless
    ``counter_file`` says otherwise: durable storage, not a temporary folder a reboot clears.
    """
    if counter_file is None:
        counter_file = counter_path_for(key_file)
    def publish(kind: str, data: dict) -> None:
        virtual = publisher.clock == "virtual"
        publisher.report(kind, data, ts_ns=runtime.clock.now_ns() if virtual else None)

    handler = CommandHandler(RuntimeTarget(runtime, app_name), publisher.node, load_key(key_file), counter_file,
                             publish=publish, rollback_faults=rollback_faults)
    publisher.on_command = handler.submit
    return handler
