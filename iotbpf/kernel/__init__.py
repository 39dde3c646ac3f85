"""The event-driven mini-OS: clocks, events, hooks, helpers, runtime, scheduler (MicroPython-compatible)."""
