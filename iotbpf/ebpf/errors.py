"""Errors a user can cause, shared by every layer; they live in ebpf/, the bottom layer, so every
other layer can import them. MicroPython-compatible."""


class IotbpfError(Exception):
    """Base of every error a user can cause (bad input, rejected program, ...).

    The CLI prints ``error: <str(exc)>`` and exits with ``exit_code``.
    """

    exit_code = 2


class LoadError(IotbpfError):
    """A program, object, bundle or data file could not be loaded."""

    exit_code = 2


class AsmError(LoadError):
    """Assembly text could not be assembled (line number in the message)."""


class VerifierError(IotbpfError):
    """The verifier rejected a program; the answer is 'no', so exit code 1."""

    exit_code = 1


class RuntimeFailure(IotbpfError):
    """The command ran but failed (fault, broker unreachable, ...): exit code 1."""

    exit_code = 1
