"""A stand-in `machine` module for the MicroPython WebAssembly port, which has none.

It provides only what that port lacks: pins (with IRQs the test can trigger), ADC, a Timer
and light sleep. Sleep really sleeps (time.sleep_ms), so time passes as on a board.
"""

import time

_pins = {}
sleeps = []


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, number, mode=IN, pull=None):
        self.number = number
        self.mode = mode
        self._value = 1 if pull == Pin.PULL_UP else 0
        self._handler = None
        self._trigger = 0
        _pins[number] = self

    def value(self, level=None):
        if level is None:
            return self._value
        self._value = 1 if level else 0

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        self._handler = handler
        self._trigger = trigger


def drive(number, level):
    """Test hook: the outside world drives input pin ``number``; fires its IRQ on a matching edge."""
    pin = _pins[number]
    old = pin._value
    pin._value = 1 if level else 0
    edge = Pin.IRQ_RISING if (not old and level) else Pin.IRQ_FALLING if (old and not level) else 0
    if edge and pin._handler is not None and pin._trigger & edge:
        pin._handler(pin)


_adc_values = {}


def set_adc(channel, values):
    """Test hook: ADC ``channel`` reads ``values`` in turn (cycling), instead of 20000 + channel."""
    _adc_values[channel] = [0, list(values)]


class ADC:
    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        cell = _adc_values.get(self.channel)
        if cell is None:
            return 20000 + self.channel
        value = cell[1][cell[0] % len(cell[1])]
        cell[0] += 1
        return value


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, tid=-1):
        self.tid = tid

    def init(self, mode=PERIODIC, period=1000, callback=None):
        self.callback = callback

    def deinit(self):
        self.callback = None


def lightsleep(ms=None):
    sleeps.append(ms)
    time.sleep_ms(ms or 0)
