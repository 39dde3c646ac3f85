"""Energy models, accounting, battery models and per-app attribution (MicroPython-compatible)."""
