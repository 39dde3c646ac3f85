"""The Platform contract: what a node's devices give the runtime. Every platform subclasses
``Platform`` (platforms/sim, platforms/mcu, platforms/rpi's RealtimePlatform); MicroPython-compatible.
"""


class Platform:
    """The devices of one node, as the runtime (kernel/runtime.py) uses them.

    ``start`` and ``sensor_read`` are abstract. Every other method has the behaviour of a node
    without that device, as documented on it; a platform overrides what it has. Methods are
    called from the event loop's thread (a real-time platform hands events from other threads
    to ``runtime.inject``). None of them may raise for a bad id from a program: they answer
    None/False and the helper returns an error code."""

    def start(self, runtime, end_ns):
        """Schedule the platform's event streams up to ``end_ns``: ``runtime.queue.push(t, fn,
        arg)`` for each first event, whose handler delivers it with ``runtime.raise_event(hook,
        fields)`` and schedules the next."""
        raise NotImplementedError("%s.start" % type(self).__name__)

    def sensor_read(self, sensor_id, now_ns):
        """Sensor ``sensor_id`` at ``now_ns`` in milli-units, or None for a sensor the board does
        not have (iot_sensor_read then returns IOT_SENSOR_ERROR)."""
        raise NotImplementedError("%s.sensor_read" % type(self).__name__)

    def sensor_reader(self, sensor_id):
        """``fn(now_ns) -> int or None`` reading one sensor as ``sensor_read`` does; the runtime
        makes one per sensor an app reads and calls it on every read (a fast path)."""
        read = self.sensor_read
        return lambda now_ns: read(sensor_id, now_ns)

    def gpio_read(self, pin):
        """Level (0/1) of a GPIO pin, or None for a pin the board does not have."""
        return None

    def gpio_write(self, pin, level):
        """Drive an output pin; False for a pin the board does not have."""
        return False

    def airtime_ns(self, nbytes):
        """Time on air of a packet of ``nbytes`` (without a scheduler the runtime queues packets
        FIFO with this airtime); 0 without a radio model."""
        return 0

    def delivered(self):
        """Whether the link delivers the packet being completed (link loss); True by default."""
        return True

    def jitter_ns(self, max_jitter_ns):
        """A timer's jitter draw in [0, max_jitter_ns], reproducible from the node's seed; 0 by default."""
        return 0

    def transmit(self, app_name, payload, now_ns):
        """A packet completes: a real node sends its bytes here (serial, MQTT). False: lost on the
        way (it counts as lost). True by default (a simulated radio has nothing to send)."""
        return True

    def log_line(self, now_ns, app_name, message, value):
        """One iot_log line (a real node prints or publishes it); nothing by default."""
        return None
