"""Simulated devices: timers, sensors, GPIO, radio and app-usage generators (MicroPython-compatible)."""
