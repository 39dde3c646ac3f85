"""Radio physics and the radio's timeline: airtime, frames, LoRa time on air, ramps, tails, burst cost.

``RadioModel`` holds what a board's radio costs (from its datasheet model); ``RadioTimeline``
charges one node's radio activity (listen windows, transmit bursts, tails) to the Energest
ledger under the documented model (docs/energy.md). The live scheduler and the oracle use the
same timeline, so a schedule costs the same whoever runs it. It must never choose *when* the
radio does something (that is policy, kernel/scheduler.py) nor look at wall-clock time.
"""

from iotbpf.energy.attribution import SYSTEM

NS_PER_S = 1000000000


def lora_time_on_air_ns(payload_bytes, sf, bw_hz, cr, preamble):
    """LoRa packet time on air (Semtech SX1276 datasheet section 4.1.1.7): explicit header, CRC on,
    low-data-rate optimisation for SF11/12 at 125 kHz."""
    de = 1 if (sf >= 11 and bw_hz <= 125000) else 0
    t_sym_ns = (1 << sf) * NS_PER_S // bw_hz
    num = 8 * payload_bytes - 4 * sf + 28 + 16
    den = 4 * (sf - 2 * de)
    extra = (num + den - 1) // den if num > 0 else 0
    n_payload = 8 + max(extra * (cr + 4), 0)
    return (preamble * 4 + 17) * t_sym_ns // 4 + n_payload * t_sym_ns


class RadioModel:
    """A board's radio: states, frame format, ramps and their energies (read-only after init)."""

    def __init__(self, board):
        spec = board.radio
        self.component = spec["component"]
        model = self.model = board.models[self.component]
        rp = dict(model.params)
        rp.update({k: v for k, v in spec.get("params", {}).items() if k != "source"})
        self.sleep = spec["sleep_state"]
        self.listen = spec["listen_state"]
        self.tx = spec["tx_state"]
        self.bitrate = rp.get("bitrate_bps", 250000)
        self.max_payload = int(rp.get("max_payload_bytes", 100))
        self.frame_overhead = int(rp.get("frame_overhead_bytes", 0))
        self.ack_ns = int(rp.get("ack_rx_us", 0) * 1000)
        self.tail_ns = int(rp.get("tail_ms", 0) * 1000000)
        # a wake-up-sampling MAC's channel check: the radio wakes to rx and samples the channel for
        # cca_us (the model's clear-channel-assessment time; an ACK's time where none is given)
        self.cca_ns = int(rp.get("cca_us", 0) * 1000) or self.ack_ns
        self.lora = None
        if "lora_sf" in rp:
            self.lora = (int(rp["lora_sf"]), int(rp["lora_bw_hz"]), int(rp.get("lora_cr", 1)),
                         int(rp.get("lora_preamble", 8)))
        v = self.voltage_v = model.voltage_v
        p_sleep = model.current_a(self.sleep) * v
        self.p_sleep = p_sleep
        # power above sleep (W) of listening and transmitting
        self.dp_rx = model.current_a(self.listen) * v - p_sleep
        self.dp_tx = model.current_a(self.tx) * v - p_sleep
        self.ramp_out_ns, self.cost_out = self._ramp(self.sleep, self.tx)
        self.ramp_in_ns, self.cost_in = self._ramp(self.listen, self.tx)
        self.wake_rx_ns, self.cost_wake_rx = self._ramp(self.sleep, self.listen)

    def _ramp(self, src, dst):
        """(ns, energy above sleep J) of the datasheet transition src->dst (0, 0.0 if none)."""
        tr = self.model.transition(src, dst)
        if tr is None or not tr.time_ns:
            return 0, 0.0
        return tr.time_ns, tr.time_ns * (tr.current_a * self.voltage_v - self.p_sleep) * 1e-9

    def frames(self, nbytes):
        return max(1, (nbytes + self.max_payload - 1) // self.max_payload)

    def airtime_ns(self, nbytes):
        """Airtime of one packet: its frames with header overhead at the radio's bit rate."""
        frames = self.frames(nbytes)
        if self.lora is not None:
            total = 0
            left = nbytes
            for _ in range(frames):
                n = min(left, self.max_payload)
                left -= n
                total += lora_time_on_air_ns(n + self.frame_overhead, *self.lora)
            return total
        bits = (nbytes + frames * self.frame_overhead) * 8
        return (bits * NS_PER_S + self.bitrate - 1) // self.bitrate

    def packet_ns(self, nbytes):
        """Radio time of one packet in a burst: its airtime plus one ACK reception per frame."""
        return self.airtime_ns(nbytes) + self.ack_ns * self.frames(nbytes)

    def packet_j(self, nbytes):
        """Energy above sleep of one packet in a burst (airtime in tx, ACKs in rx)."""
        return self.airtime_ns(nbytes) * self.dp_tx * 1e-9 + \
            self.ack_ns * self.frames(nbytes) * self.dp_rx * 1e-9

    def check_j(self):
        """Energy above sleep of one idle channel check: the sleep->rx wake-up and cca_ns in rx."""
        return self.cost_wake_rx + self.cca_ns * self.dp_rx * 1e-9

    def strobe_copy(self, arrival_ns, listen_ns, nbytes, checked=True):
        """Wake-up sampling (ContikiMAC-like): from ``arrival_ns`` the sender repeats the whole packet,
        each copy followed by an ACK wait (ack_ns), until the receiver acknowledges. A receiver
        that starts listening at ``listen_ns`` (after a channel check of cca_ns when ``checked``)
        receives the first copy that starts after that. Returns (start, end) of that copy and the
        number of copies the sender sent."""
        air = self.airtime_ns(nbytes)
        period = air + self.ack_ns
        ready = listen_ns + (self.cca_ns if checked else 0)
        m = 0
        if ready > arrival_ns:
            m = (ready - arrival_ns + period - 1) // period
        start = arrival_ns + m * period
        return start, start + air, m + 1

    def sender_j(self, copies, nbytes):
        """Energy the sender spends strobing ``copies`` copies (its wake-up, each copy's airtime in
        tx and the ACK wait after each but the last in rx), total, as this radio: charged to the
        sender and reported apart, never to this node's ledger."""
        air = self.airtime_ns(nbytes)
        tx_w = self.dp_tx + self.p_sleep
        rx_w = self.dp_rx + self.p_sleep
        return self.cost_out + (copies * air * tx_w + (copies - 1) * self.ack_ns * rx_w) * 1e-9

    def hold_pays(self, gap_ns):
        """True when staying in rx for ``gap_ns`` before a burst costs less than sleeping and waking."""
        return self.dp_rx * gap_ns * 1e-9 + self.cost_in < self.cost_out

    def break_even_ns(self):
        """The longest gap for which staying in rx can pay (before a burst or a listen window)."""
        if self.dp_rx <= 0:
            return 1 << 62
        return int(max(self.cost_out - self.cost_in, self.cost_wake_rx, 0.0) / self.dp_rx * 1e9) + 1


class RadioTimeline:
    """One radio's activity, charged to a ledger (integer ns per state) and an attribution.

    The rules (the documented model): listening costs rx for every ns of the union of listen
    windows not spent transmitting; waking to rx from sleep costs the sleep->rx transition; a
    burst starts at max(t, end of the previous burst) with the rx->tx transition when the radio
    is awake at that instant (listening, or at the very end of a window or burst), else sleep->tx;
    then every packet's airtime (tx) and ACKs (rx) in order; a radio with a tail stays in rx for
    the tail after a burst, cut short by the next burst. ``background_rx``: the radio never sleeps
    (always_on; the ledger's background state is rx)."""

    def __init__(self, radio, ledger, attr, background_rx=False):
        self.radio = radio
        self.ledger = ledger
        self.attr = attr
        self.background_rx = background_rx
        self.awake_until = -1      # the radio is awake at every t <= awake_until (from listens, bursts)
        self.rx_until = -1         # listening is charged up to here
        self.rx_segs = ()          # (begin, end, app) of the listening charged beyond the last burst
        self.tx_until = -1         # end of the last burst
        self.tail = None           # (burst end, apps) of a tail not yet charged
        self.listen_ns = 0

    def state(self):
        return (self.awake_until, self.rx_until, self.rx_segs, self.tx_until, self.tail, self.listen_ns)

    def restore(self, state):
        self.awake_until, self.rx_until, self.rx_segs, self.tx_until, self.tail, self.listen_ns = state

    def awake(self, t):
        return self.background_rx or t <= self.awake_until

    def listening(self, t):
        """True when the radio listens at ``t`` (it can receive a packet arriving then)."""
        return self.background_rx or (t < self.rx_until and t >= self.tx_until)

    def settle_tail(self, t, cut=True):
        """Charge a pending tail up to ``t`` (``cut``: a burst at t ends it) or in full."""
        if self.tail is None:
            return
        end, apps = self.tail
        self.tail = None
        stop = end + self.radio.tail_ns
        if cut and t < stop:
            stop = t
        if stop > end:
            self._rx(end, stop, apps[0] if len(apps) == 1 else SYSTEM)

    def listen(self, start, end, app):
        """Keep the radio in rx over [start, end) (only the part not already listened or sent)."""
        if self.background_rx or end <= start:
            return
        self.settle_tail(start, cut=False)
        self._rx(start, end, app)

    def _rx(self, start, end, app):
        begin = start
        if begin < self.rx_until:
            begin = self.rx_until
        if begin < self.tx_until:
            begin = self.tx_until
        if end <= begin:
            return
        led = self.ledger
        r = self.radio
        if begin > self.awake_until:
            ns = led.add_transition(r.component, r.sleep, r.listen)
            if ns:
                self.attr.charge(app, r.component, r.sleep + ">" + r.listen, ns)
        ns = end - begin
        led.add(r.component, r.listen, ns)
        self.attr.charge(app, r.component, r.listen, ns)
        self.listen_ns += ns
        self.rx_until = end
        # a burst comes at or after ``start``: listening that ended before it cannot be displaced
        self.rx_segs = tuple(seg for seg in self.rx_segs if seg[1] > start) + ((begin, end, app),)
        if end > self.awake_until:
            self.awake_until = end

    def burst(self, t, packets, stats=None):
        """Send ``packets`` ([arrival, deadline, nbytes, app, airtime_ns], in order) from ``t``;
        returns the completion time of each, in order."""
        r = self.radio
        if self.tail is not None:
            self.settle_tail(t)
        if t < self.tx_until:
            t = self.tx_until
        led = self.ledger
        attr = self.attr
        comp = r.component
        apps = [q[3] for q in packets]
        src = r.listen if self.awake(t) else r.sleep
        ns = led.add_transition(comp, src, r.tx)
        if ns:
            attr.split(apps, comp, src + ">" + r.tx, ns)
        cursor = t + ns
        ack_ns = r.ack_ns
        out = []
        for q in packets:
            air = q[4]
            app = q[3]
            led.add(comp, r.tx, air)
            attr.charge(app, comp, r.tx, air)
            ack = ack_ns * r.frames(q[2])
            if ack:
                led.add(comp, r.listen, ack)
                attr.charge(app, comp, r.listen, ack)
            cursor += air + ack
            out.append(cursor)
        if self.rx_until > t:
            # the burst displaces listening already charged for this stretch (to whoever paid it)
            keep = ()
            for begin, end, app in self.rx_segs:
                overlap = min(cursor, end) - max(t, begin)
                if overlap > 0:
                    led.add(comp, r.listen, -overlap)
                    attr.charge(app, comp, r.listen, -overlap)
                    self.listen_ns -= overlap
                if end > cursor:
                    keep = keep + ((max(begin, cursor), end, app),)
            self.rx_segs = keep
        elif self.rx_segs:
            self.rx_segs = ()
        self.tx_until = cursor
        if cursor > self.awake_until:
            self.awake_until = cursor
        if r.tail_ns:
            self.tail = (cursor, apps)
        return out
