"""The energy package's error: a malformed model, board, cell, weather or profile file.

Its own module so every loader (models, the Android importer, boards, harvesters, batteries) can
raise it without importing another loader: no import circles inside ``iotbpf.energy``."""

from iotbpf.ebpf.errors import IotbpfError


class ModelError(IotbpfError):
    """A component model or board file is malformed (the message names the file and the field)."""
