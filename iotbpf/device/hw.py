"""The board's hardware for the device runtime (MicroPython): clocks, pins, ADC, report sinks; GPIO
edges come through ``micropython.schedule``, never handled in the hard IRQ (docs/mcu.md).
"""

import json
import time

NS_PER_US = 1000
NS_PER_MS = 1000000


class Clock:
    virtual = False

    def __init__(self, min_sleep_ms=2):
        import machine

        self._sleep = machine.lightsleep
        self._min = min_sleep_ms
        self._last = time.ticks_us()
        self._acc = 0

    def now_ns(self):
        now = time.ticks_us()
        self._acc += time.ticks_diff(now, self._last)
        self._last = now
        return self._acc * NS_PER_US

    def sleep_until(self, t_ns):
        delta = (t_ns - self.now_ns()) // NS_PER_MS
        if delta >= self._min:
            self._sleep(delta)
        elif delta > 0:
            time.sleep_ms(delta)


class VirtualClock:
    virtual = True

    def __init__(self):
        self.now = 0

    def now_ns(self):
        return self.now

    def sleep_until(self, t_ns):
        if t_ns > self.now:
            self.now = t_ns


class SerialSink:
    """Reports as JSON lines on the serial console."""

    def __init__(self):
        self.sent = 0

    def publish(self, topic, payload):
        print(json.dumps({"topic": topic, "payload": payload}))
        self.sent += 1
        return True


class MqttSink:
    """Reports with ``umqtt.simple`` on Wi-Fi boards; serial while the broker is unreachable."""

    def __init__(self, client_id, server, port=1883):
        from umqtt.simple import MQTTClient

        self.client = MQTTClient(client_id, server, port=port, keepalive=60)
        self.fallback = SerialSink()
        self.connected = False

    def publish(self, topic, payload):
        try:
            if not self.connected:
                self.client.connect()
                self.connected = True
            self.client.publish(topic, json.dumps(payload), qos=1)
            return True
        except OSError:
            self.connected = False
            return self.fallback.publish(topic, payload)


class Pins:
    """GPIO inputs with edge IRQs, outputs and ADC sensors from the image's device config."""

    def __init__(self, config, on_edge):
        import machine

        self.inputs = {}
        self.outputs = {}
        self.adcs = {}
        self.irqs = 0
        try:
            import micropython

            schedule = getattr(micropython, "schedule", None)
        except ImportError:  # CPython with the tests' stand-in machine: deliver at once
            schedule = None
        for spec in config.get("sensors", ()):
            if "adc" in spec:
                self.adcs[spec.get("id", 0)] = (machine.ADC(spec["adc"]), spec.get("scale", 1.0),
                                                spec.get("offset", 0))
        for pin in config.get("outputs", ()):
            self.outputs[pin] = machine.Pin(pin, machine.Pin.OUT)
        for spec in config.get("gpio", ()):
            number = spec["pin"]
            pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(spec.get("pull", "up"))
            pin = machine.Pin(number, machine.Pin.IN, pull)
            trigger = {"rising": machine.Pin.IRQ_RISING, "falling": machine.Pin.IRQ_FALLING}.get(
                spec.get("trigger", "both"), machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)
            self.inputs[number] = pin
            pin.irq(handler=self._handler(number, on_edge, schedule), trigger=trigger)

    def _handler(self, number, on_edge, schedule):
        pins = self

        def irq(_pin):
            pins.irqs += 1  # hard context: count and schedule, never allocate more
            if schedule is not None:
                schedule(on_edge, number)
            else:
                on_edge(number)
        return irq

    def level(self, number):
        pin = self.inputs.get(number) or self.outputs.get(number)
        return None if pin is None else pin.value()

    def write(self, number, level):
        pin = self.outputs.get(number)
        if pin is None:
            return False
        pin.value(level)
        return True

    def sensor(self, sensor_id):
        adc = self.adcs.get(sensor_id)
        if adc is None:
            return None
        return int(adc[0].read_u16() * adc[1]) + adc[2]
