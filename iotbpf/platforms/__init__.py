"""Event sources and power sensors for simulation, Linux, Raspberry Pi, Android and MCUs."""
