"""The contract between the runtime (kernel/runtime.py) and a node's scheduler (energy policy).

Every scheduler derives from ``SchedulerBase``: the runtime calls the methods below directly (no
probing). The ones that raise NotImplementedError must be implemented; the others have working
defaults for a scheduler that does not keep that state (no battery, no counters, no parameters).
All times are integer nanoseconds of the node's clock. It must never look at wall-clock time.
"""

NS_PER_S = 1000000000
NS_PER_DAY = 86400 * NS_PER_S


class SchedulerBase:
    """What the runtime asks of a scheduler.

    Events it reports (the scheduler charges their energy and may act on them): ``boot(now)``,
    ``advance(now)`` (time has passed), ``cpu_busy(now, busy_ns, app)``, ``sensor_read(now,
    sensor, app)``, ``hold_wakelock(now, duration_ns, app)``, ``enqueue_tx(now, nbytes,
    deadline_ns, app)``, ``request_listen(now, duration_ns, app)``, ``rx_arrival(now, nbytes) ->
    bool`` (False: the radio was not listening, the packet is lost). Its own schedule:
    ``next_wakeup_ns() -> int | None`` and ``on_wakeup(now) -> [(done_ns, nbytes, app, ok)]``.
    Readers (never change state): ``energy_used_j()``, ``soc()``, ``battery_dead()``,
    ``summary()``; ``flush()`` ends a run."""

    battery = None      # the node's battery model (None: no battery)
    ledger = None       # the Energest ledger (None: nothing to profile)

    def set_param_reader(self, fn):
        """``fn() -> sequence of u64``: the iot_policy map, to be re-read whenever it may have changed."""
        self._param_reader = fn

    def cpu_counter(self, busy_ns, app):
        """A counter cell ``[count]`` the runtime may bump instead of calling cpu_busy for each
        identical burst, or None (the default: call cpu_busy every time)."""
        return None

    def sensor_counter(self, sensor, app):
        """Like cpu_counter, for sensor_read (None: call sensor_read every time)."""
        return None

    def take_done(self):
        """Transmissions finished or timed so far ``[(done_ns, nbytes, app, ok)]``, handed over once
        (the default: none; they come from on_wakeup)."""
        return ()

    def next_wakeup_ns(self):
        return None

    def on_wakeup(self, now_ns):
        return []

    def boot(self, now_ns):
        raise NotImplementedError

    def advance(self, now_ns):
        raise NotImplementedError

    def cpu_busy(self, now_ns, busy_ns, app):
        raise NotImplementedError

    def sensor_read(self, now_ns, sensor, app):
        raise NotImplementedError

    def hold_wakelock(self, now_ns, duration_ns, app):
        raise NotImplementedError

    def enqueue_tx(self, now_ns, nbytes, deadline_ns, app):
        raise NotImplementedError

    def request_listen(self, now_ns, duration_ns, app):
        raise NotImplementedError

    def rx_arrival(self, now_ns, nbytes):
        raise NotImplementedError

    def energy_used_j(self):
        raise NotImplementedError

    def soc(self):
        raise NotImplementedError

    def battery_dead(self):
        raise NotImplementedError

    def summary(self):
        raise NotImplementedError

    def flush(self):
        raise NotImplementedError
