"""The device runtime's event loop (MicroPython): one app from a device image on this board, events in
the host runtime's order, programs on the compact interpreter, maps pinned to flash crash-safely
and restored at boot (docs/mcu.md, "The device runtime").
"""

import json
import struct

from iotbpf.device import vm
from iotbpf.device.maps import make_map

M64 = 0xFFFFFFFFFFFFFFFF
SENSOR_ERROR = 1 << 63
EINVAL = 22
ENOENT = 2
ENOSPC = 28
SAVE_EVERY_NS = 600 * 10 ** 9  # flash wears out: pinned maps are written every 10 minutes
MAX_FAULT_RECORDS = 8
_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


class Prog:
    def __init__(self, section, code, budget):
        self.section = section
        self.code = code
        self.budget = budget
        self.previous = None  # OTA: (code, budget) to roll back to
        self.faults = 0
        self.recent = []
        self.detached = False


class Node:
    """An app running on this board. ``clock``: hw.Clock (real time) or hw.VirtualClock (replay)."""

    def __init__(self, image, clock=None, sink=None, pin_dir="/pins", key=None, app_dir=None):
        from iotbpf.device import hw

        self.image = image
        self.name = image["app"]
        self.clock = clock or hw.Clock()
        self.sink = sink or hw.SerialSink()
        self.key = key
        self.app_dir = app_dir  # where over-the-air updates arrive (ota.UPDATE_FILE)
        self.mem = vm.Memory()
        self.maps = {}
        self._by_region = []
        for spec in image["maps"]:
            m = make_map(spec)
            self.maps[m.name] = m
            self._by_region.append(m)
            self.mem.regions.append(m.values)
        self.progs = {}
        for hook, section, code, budget in image["progs"]:
            self.progs.setdefault(hook, []).append(Prog(section, code, budget))
        self.stats = {}  # hook -> [events, runs, faults]
        self.fault_log = []
        self.queue = []  # [t, seq, fn, arg]
        self.seq = 0
        self.timers = {}
        self.inbox = []
        self.booted = False
        self.dead_at_ns = None
        policy = image["policy"]
        self.txq_limit = policy["txq"]
        self.battery_ns = policy["battery_ns"]
        self.bitrate = image["bitrate"]
        self.in_flight_bytes = 0
        self.radio_free = 0
        self.tx_sent = 0
        self.tx_lost = 0
        energy = image.get("energy")
        self.ledger = None
        if energy:
            from iotbpf.device.energy import Ledger

            self.ledger = Ledger(energy)
        device = image.get("device") or {}
        self.pins = None
        if device:
            from iotbpf.device.hw import Pins

            self.pins = Pins(device, self._edge)
        self.pin_dir = pin_dir
        self.restored = 0
        if pin_dir:
            self._restore()
        self._last_save = 0
        self._last_report = 0

    # ------------------------------------------------------------ events

    def push(self, at, fn, arg):
        self.seq += 1
        self.queue.append((at, self.seq, fn, arg))

    def _pop(self, limit):
        """The earliest event at or before ``limit`` (removed), or None."""
        best = None
        for i in range(len(self.queue)):
            e = self.queue[i]
            if e[0] <= limit and (best is None or (e[0], e[1]) < (self.queue[best][0], self.queue[best][1])):
                best = i
        return None if best is None else self.queue.pop(best)

    def boot(self):
        if self.booted:
            return
        self.booted = True
        now = self.clock.now_ns()
        self.hook("boot", {"now_ns": now, "reason": 1 if self.restored else 0,
                           "battery_permille": self.battery_permille(), "app_id": 1})
        for tid, start, period in self.image["timers"]:
            self.arm(tid, start, period)
        if self.battery_ns:
            self.push(now + self.battery_ns, self._battery, None)

    def run_until(self, end_ns):
        """Replay in virtual time: every event before ``end_ns`` at its own time."""
        self.boot()
        clock = self.clock
        while self.dead_at_ns is None:
            e = self._pop(end_ns - 1)
            if e is None:
                break
            clock.now = e[0]
            e[2](e[0], e[3])
        clock.sleep_until(end_ns)

    def post(self, at_ns, hook, fields):
        """An outside event at ``at_ns`` (replay)."""
        self.push(at_ns, self._posted, (hook, fields))

    def _posted(self, now, arg):
        self.hook(arg[0], arg[1])

    def run_realtime(self, duration_ns, poll_ns=10 ** 9):
        self.boot()
        clock = self.clock
        end = clock.now_ns() + duration_ns
        while True:
            now = clock.now_ns()
            while self.inbox:
                hook, fields = self.inbox.pop(0)
                self.hook(hook, fields)
            while True:
                e = self._pop(now)
                if e is None:
                    break
                e[2](now, e[3])
            if now >= end or self.dead_at_ns is not None:
                return
            wake = now + poll_ns
            for e in self.queue:
                if e[0] < wake:
                    wake = e[0]
            clock.sleep_until(min(wake, end))

    def run(self, duration_ns, slice_ns=10 ** 9, report_ns=60 * 10 ** 9):
        """Run for ``duration_ns`` of real time in slices; between slices report and pin maps."""
        self.boot()
        end = self.clock.now_ns() + duration_ns
        while self.dead_at_ns is None:
            now = self.clock.now_ns()
            if now >= end:
                break
            self.run_realtime(min(slice_ns, end - now), poll_ns=slice_ns)
            now = self.clock.now_ns()
            if now - self._last_report >= report_ns:
                self.report(now)
            if self.pin_dir and now - self._last_save >= SAVE_EVERY_NS:
                self.save()
                self._last_save = now
            if self.app_dir is not None:
                self.poll_update()
        self.report(self.clock.now_ns())
        if self.pin_dir:
            self.save()

    def poll_update(self):
        """Apply an image copied to ``app_dir``/update.dimg (ota.py is imported only then)."""
        import os

        try:
            os.stat(self.app_dir + "/update.dimg")
        except OSError:
            return None
        from iotbpf.device import ota

        return ota.poll(self, self.app_dir)

    def _edge(self, number):
        level = self.pins.level(number)
        self.inbox.append(("gpio", {"pin": number, "level": level, "edge": 1 if level else 2}))

    # ------------------------------------------------------------ running programs

    def hook(self, hook, fields):
        """One event on ``hook``: run its programs on a context packed from ``fields``; their r0s."""
        now = self.clock.now_ns()
        st = self.stats.get(hook)
        if st is None:
            st = self.stats[hook] = [0, 0, 0]
        st[0] += 1
        out = []
        progs = self.progs.get(hook)
        if not progs:
            return out
        size, layout = self.image["ctx"][hook]
        for p in progs:
            if p.detached:
                continue
            ctx = bytearray(size)
            for name, off, n in layout:
                v = now if name == "now_ns" else fields.get(name, 0)
                if isinstance(v, int):
                    if n in _FMT:
                        struct.pack_into(_FMT[n], ctx, off, v & ((1 << (8 * n)) - 1))
                else:
                    v = bytes(v[:n])
                    ctx[off:off + len(v)] = v
            self.mem.regions[2] = ctx
            try:
                r0, insns = vm.run(p.code, self.mem, 2 << 16, self._call, p.budget)
            except vm.Fault as exc:
                if self.ledger is not None:
                    self.ledger.cpu(exc.insns)
                self._fault(p, hook, st, now, exc)
                continue
            finally:
                self.mem.regions[2] = None
            st[1] += 1
            if self.ledger is not None:
                self.ledger.cpu(insns)
            out.append(r0)
        return out

    def _fault(self, p, hook, st, now, exc):
        p.faults += 1
        st[2] += 1
        if len(self.fault_log) < MAX_FAULT_RECORDS:
            self.fault_log.append((now, hook, p.section, str(exc)))
        fmax, window = self.image["faults"]
        p.recent = [t for t in p.recent if now - t < window] + [now]
        if p.previous is not None:
            from iotbpf.device import ota

            if ota.check_rollback(self, hook, p, now):
                return
        if len(p.recent) >= fmax and not p.detached:
            p.detached = True
            self.sink.publish("iotbpf/%s/faults" % self.name, {"t_ns": now, "event": "detached", "hook": hook,
                                                                "section": p.section, "reason": str(exc)})

    def _map(self, handle):
        i = (handle >> 16) - 3
        if 0 <= i < len(self._by_region) and not handle & 0xFFFF:
            return self._by_region[i]
        raise vm.Fault(-1, "not a map: 0x%x" % handle)

    def _call(self, hid, r):
        mem = self.mem
        if hid == 1 or hid == 2 or hid == 3:
            m = self._map(r[1])
            key = mem.read(r[2], m.key_size)
            if hid == 1:
                slot = m.slot(key)
                return 0 if slot is None else r[1] + slot * m.value_size
            if hid == 2:
                return m.update(key, mem.read(r[3], m.value_size), r[4])
            return m.delete(key)
        if hid == 87:
            m = self._map(r[1])
            return m.push(mem.read(r[2], m.value_size), r[3])
        if hid == 88 or hid == 89:
            value = self._map(r[1]).take(hid == 88)
            if value is None:
                return -ENOENT
            mem.write(r[2], value)
            return 0
        if hid == 5:
            return self.clock.now_ns()
        if hid == 0x1000:
            value = self.pins.sensor(r[1] & 0xFFFFFFFF) if self.pins is not None else None
            if value is None:
                return SENSOR_ERROR
            if self.ledger is not None:
                self.ledger.reads += 1
            return value
        if hid == 0x1001:
            if r[1] > 0xFFFF or r[2] > (1 << 62) or r[3] > (1 << 62) or (r[3] and r[3] < 1000):
                return -EINVAL
            self.arm(r[1], r[2], r[3])
            return 0
        if hid == 0x1002:
            return 0 if self.timers.pop(r[1], None) is not None else -ENOENT
        if hid == 0x1003:
            level = self.pins.level(r[1] & 0xFFFFFFFF) if self.pins is not None else None
            return -EINVAL if level is None else level
        if hid == 0x1004:
            ok = self.pins is not None and self.pins.write(r[1] & 0xFFFFFFFF, 1 if r[2] else 0)
            return 0 if ok else -EINVAL
        if hid == 0x1005:
            payload = self._read(r[1], r[2])
            if r[3] > (1 << 62):
                return -EINVAL
            return 0 if self.send(payload, r[3]) else -ENOSPC
        if hid == 0x1006:
            return -EINVAL if r[1] > (1 << 62) else 0
        if hid == 0x1007:
            return self.energy_used_uj()
        if hid == 0x1008:
            return self.battery_permille()
        if hid == 0x1009:
            text = self._read(r[1], r[2])
            end = text.find(b"\0")
            self.log(text[:end] if end >= 0 else text, r[3])
            return 0
        raise vm.Fault(-1, "helper %d is not on this device" % hid)

    def _read(self, addr, size):
        if size > 4096:
            raise vm.Fault(-1, "size %d too large" % size)
        return self.mem.read(addr, size)

    # ------------------------------------------------------------ devices

    def arm(self, tid, delay_ns, period_ns):
        timer = self.timers.get(tid)
        gen = timer[0] + 1 if timer is not None else 1
        self.timers[tid] = [gen, period_ns, 0]
        self.push(self.clock.now_ns() + delay_ns, self._timer, (tid, gen))

    def _timer(self, now, arg):
        tid, gen = arg
        timer = self.timers.get(tid)
        if timer is None or timer[0] != gen:
            return
        timer[2] += 1
        period = timer[1]
        if period:
            self.push(now + period, self._timer, arg)
        else:
            del self.timers[tid]
        self.hook("timer", {"period_ns": period, "timer_id": tid, "expirations": timer[2]})

    def send(self, payload, deadline_rel_ns):
        n = len(payload)
        if self.in_flight_bytes + n > self.txq_limit:
            return False
        now = self.clock.now_ns()
        self.in_flight_bytes += n
        start = now if now > self.radio_free else self.radio_free
        airtime = n * 8 * 1000000000 // self.bitrate
        self.radio_free = start + airtime
        if self.ledger is not None:
            self.ledger.tx_ns += airtime
        self.push(self.radio_free, self._tx_done, (n, now + deadline_rel_ns, now, payload))
        return True

    def _tx_done(self, now, arg):
        n, deadline, queued_at, payload = arg
        ok = bool(self.sink.publish("iotbpf/%s/radio" % self.name,
                                    {"t_ns": now, "app": self.name, "payload": _hex(payload[:1024])}))
        self.in_flight_bytes -= n
        if ok:
            self.tx_sent += 1
        else:
            self.tx_lost += 1
        self.hook("radio_tx_done", {"latency_ns": now - queued_at, "nbytes": n, "ok": 1 if ok else 0,
                                    "deadline_missed": 1 if now > deadline else 0})

    def log(self, text, value):
        try:
            msg = text.decode()
        except UnicodeError:
            msg = repr(text)
        self.sink.publish("iotbpf/%s/log" % self.name,
                          {"t_ns": self.clock.now_ns(), "app": self.name, "msg": msg, "value": value})

    def energy_used_uj(self):
        if self.ledger is None:
            return 0
        self.ledger.advance(self.clock.now_ns())
        return self.ledger.used_uj()

    def battery_permille(self):
        if self.ledger is None:
            return 1000
        self.ledger.advance(self.clock.now_ns())
        return self.ledger.permille()

    def _battery(self, now, arg):
        permille = self.battery_permille()
        policy = self.image["policy"]
        flags = (1 if permille < policy["low"] else 0) | (2 if permille < policy["critical"] else 0)
        self.hook("battery", {"energy_used_uj": self.energy_used_uj(), "soc_permille": permille, "flags": flags})
        if self.ledger is not None and self.ledger.dead():
            self.dead_at_ns = now
            return
        self.push(now + self.battery_ns, self._battery, None)

    # ------------------------------------------------------------ reports and pinned maps

    def report(self, now_ns):
        self._last_report = now_ns
        runs = 0
        faults = 0
        for st in self.stats.values():
            runs += st[1]
            faults += st[2]
        self.sink.publish("iotbpf/%s/status" % self.name, {"t_ns": now_ns, "runs": runs, "faults": faults,
                                                           "battery_permille": self.battery_permille()})

    def _pin_path(self, name):
        return "%s/%s.%s.json" % (self.pin_dir, self.name, name)

    def _restore(self):
        import os

        try:
            os.mkdir(self.pin_dir)
        except OSError:
            pass
        for name, m in self.maps.items():
            try:
                with open(self._pin_path(name)) as f:
                    saved = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if isinstance(saved, dict) and saved.get("version") == 1 and \
                    saved.get("map") == self.name + "." + name:
                m.import_state(saved.get("state", {}))
                self.restored += 1
        if self.ledger is not None:
            try:
                with open(self._pin_path("@energy")) as f:
                    self.ledger.restore(json.loads(f.read()))
            except (OSError, ValueError, AttributeError):
                pass

    def save(self):
        import os

        files = [(self._pin_path(name), {"version": 1, "map": self.name + "." + name, "state": m.export_state()})
                 for name, m in self.maps.items()]
        if self.ledger is not None:
            self.ledger.advance(self.clock.now_ns())
            files.append((self._pin_path("@energy"), self.ledger.state()))
        for path, data in files:
            with open(path + ".tmp", "w") as f:
                f.write(json.dumps(data))
            os.rename(path + ".tmp", path)


def _hex(data):
    return "".join("%02x" % b for b in data)


def start(app_dir="/app", pin_dir="/pins", clock=None, sink=None):
    """What main.py calls: load ``app_dir``/app.dimg (and the key beside it, if any), boot."""
    from iotbpf.device import image

    key = None
    try:
        with open(app_dir + "/key") as f:
            key = bytes.fromhex(f.read().strip())
    except OSError:
        pass
    img = image.load(app_dir + "/app.dimg", key)
    mqtt = (img.get("device") or {}).get("mqtt")
    if sink is None and mqtt:  # Wi-Fi boards: umqtt.simple, serial while the broker is unreachable
        from iotbpf.device.hw import MqttSink

        sink = MqttSink(img["app"], mqtt["server"], mqtt.get("port", 1883))
    return Node(img, clock=clock, sink=sink, pin_dir=pin_dir, key=key, app_dir=app_dir)
