"""The runtime's contract with a scheduler (kernel/scheduler_base.py): the Scheduler implements
every method the base leaves abstract, the base's defaults are what a scheduler without that
state answers, and the readers stay read-only with wake-up sampling on."""

import inspect

import pytest

from iotbpf.kernel.scheduler import Scheduler, make_scheduler
from iotbpf.kernel.scheduler_base import SchedulerBase

NS = 1000000000


def _abstract():
    out = []
    for name, fn in vars(SchedulerBase).items():
        if callable(fn) and "NotImplementedError" in inspect.getsource(fn):
            out.append(name)
    return out


def test_the_scheduler_implements_every_abstract_method_of_the_contract():
    names = _abstract()
    assert {"boot", "advance", "enqueue_tx", "rx_arrival", "summary", "flush"} <= set(names)
    for name in names:
        assert getattr(Scheduler, name) is not getattr(SchedulerBase, name), name


def test_the_base_defaults_answer_for_a_scheduler_without_that_state():
    class Minimal(SchedulerBase):
        pass

    m = Minimal()
    assert m.battery is None and m.ledger is None
    assert m.cpu_counter(1000, "a") is None and m.sensor_counter(0, "a") is None
    assert m.take_done() == () and m.next_wakeup_ns() is None and m.on_wakeup(0) == []
    m.set_param_reader(lambda: [0] * 16)
    with pytest.raises(NotImplementedError):
        m.boot(0)


def test_readers_are_read_only_with_wake_up_sampling():
    sched = make_scheduler("batching", "nrf52840_dk")
    sched.update_params({"CHECK_INTERVAL_NS": 2 * NS})
    sched.boot(0)
    assert sched.rx_arrival(NS, 40) is True            # caught at the 2 s check
    sched.advance(3 * NS)
    before = (dict(sched.stats), dict(sched.ledger.ns), sched._chk_count, sched._chk_done, len(sched._rx_pending))
    first = sched.summary()
    sample = sched.sample(3 * NS)
    assert (dict(sched.stats), dict(sched.ledger.ns), sched._chk_count, sched._chk_done,
            len(sched._rx_pending)) == before
    assert sched.summary() == first and sched.sample(3 * NS) == sample
    radio = first["components"]["radio"]["states"]
    assert radio["rx"]["ns"] > 0 and radio["sleep>rx"]["ns"] > 0
