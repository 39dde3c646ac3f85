"""Issue 24, item 7: an over-the-air program update carries its .rodata/.data (and new globals),
verified as a whole; the rollback restores the previous program with its own globals."""

from __future__ import annotations

import pytest

from iotbpf.ebpf.loader.bundle import save_bundle
from iotbpf.ebpf.loader.elf import load_elf_object
from tests.report.test_ota import Rig

THRESHOLD = r"""
#include "iotbpf.h"
const volatile __u64 threshold = %d;
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    char msg[] = "thr";
    iot_log(msg, sizeof(msg), threshold);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

NEW_GLOBALS = r"""
#include "iotbpf.h"
const volatile __u64 threshold = 3000;
__u64 runs;                 /* .bss: a global the running program does not have */
__u64 step = 5;             /* .data */
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    char msg[] = "thr";
    runs += step;
    iot_log(msg, sizeof(msg), threshold + runs);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

FAULTY = r"""
#include "iotbpf.h"
const volatile __u64 threshold = 9999;
struct big { char bytes[8192]; };
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct big);
} big SEC(".maps");
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    __u32 k = 0;
    struct big *v = bpf_map_lookup_elem(&big, &k);
    if (!v)
        return 0;
    iot_log(v, sizeof(*v), threshold);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def bundles(clang):
    sources = {"t1000": THRESHOLD % 1000, "t2000": THRESHOLD % 2000, "globals": NEW_GLOBALS, "faulty": FAULTY}
    return {name: save_bundle(load_elf_object(clang.compile(src))) for name, src in sources.items()}


def _thresholds(rig):
    return [entry[3] for entry in rig.rt.logs if entry[2] == "thr"]


def _same(values, expected):
    return len(values) >= 1 and set(values) == {expected}


def _run(rig, minutes):
    """The values logged during the next ``minutes``."""
    before = len(_thresholds(rig))
    rig.run(minutes)
    return _thresholds(rig)[before:]


def test_update_carries_its_rodata(bundles, tmp_path):
    rig = Rig(tmp_path)
    assert rig.update(bundles["t1000"])["ok"]
    assert _same(_run(rig, 3), 1000)
    reply = rig.update(bundles["t2000"])
    assert reply["ok"], reply
    assert _same(_run(rig, 3), 2000)   # before the fix: still 1000


def test_update_may_add_globals(bundles, tmp_path):
    rig = Rig(tmp_path)
    assert rig.update(bundles["t1000"])["ok"]
    reply = rig.update(bundles["globals"])       # before the fix: refused (layouts differ)
    assert reply["ok"], reply
    values = _run(rig, 4)
    assert len(values) >= 2 and values == [3000 + 5 * (i + 1) for i in range(len(values))]
    assert rig.rt.fault_count == 0


def test_rollback_restores_the_previous_globals(bundles, tmp_path):
    rig = Rig(tmp_path)
    assert rig.update(bundles["t2000"])["ok"]
    assert _same(_run(rig, 2), 2000)
    good = rig.timer_program()
    assert rig.update(bundles["faulty"])["ok"]
    reports = rig.run(5)
    assert [r["event"] for r in reports] == ["rollback"]
    assert rig.timer_program() is good
    assert _same(_run(rig, 3), 2000)
