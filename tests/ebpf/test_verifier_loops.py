"""Unbounded loops are rejected early (before the million-instruction limit) with the loop's
back edge and its C line named; bounded loops of the same shapes still verify."""

import pytest

from conftest import REPO
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.ebpf.verifier import verify
from iotbpf.kernel import helpers as iot_helpers
from iotbpf.kernel.hooks import HOOKS

SOURCE = REPO / "tests" / "c" / "loops_unbounded.c"


@pytest.fixture(scope="module")
def obj(clang):
    return load_elf_object(clang.compile(SOURCE))


def check(obj, name):
    table = linux_helpers()
    iot_helpers.register(table)
    return verify(obj.program(name), helpers=table, hook=HOOKS["timer"].layout())


def test_counter_against_an_unbounded_value_is_rejected_early(obj):
    with pytest.raises(VerifierError) as err:
        check(obj, "counter_vs_reading")
    text = str(err.value)
    assert "loop without a constant bound" in text  # the early verdict, not "too complex"
    assert "back edge pc" in text and "loops_unbounded.c:9: for (__s64 i = 0; i < v; i++)" in text


def test_loop_on_a_helper_result_names_its_condition_line(obj):
    with pytest.raises(VerifierError) as err:
        check(obj, "while_reading")
    text = str(err.value)
    assert "infinite loop" in text
    assert "loops_unbounded.c:17: while (iot_sensor_read(0) > 0)" in text.split(" \u2014 ")[0]


@pytest.mark.parametrize("name", ["clamped", "two_conditions", "ends_by_another_condition"])
def test_bounded_loops_of_the_same_shape_verify(obj, name):
    assert check(obj, name).insns_processed > 150
