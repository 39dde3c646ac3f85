"""Every IoT helper works when called from C (clang-19 -> ELF -> verifier -> runtime)."""

import json
import struct

from iotbpf.api import Node
from iotbpf.kernel.clock import NS_PER_MIN
from iotbpf.kernel.helpers import HELPER_TABLE

SOURCE = r"""
#include "iotbpf.h"

struct results {
	__s64 sensor;        // iot_sensor_read(0)
	__s64 bad_sensor;    // iot_sensor_read(42): IOT_SENSOR_ERROR
	__s64 gpio_in;       // iot_gpio_read(5)
	__s64 gpio_bad;      // iot_gpio_read(77): -EINVAL
	__s64 gpio_write;    // iot_gpio_write(6, 1)
	__s64 send;          // iot_radio_send(...)
	__s64 listen;        // iot_radio_listen(1 s)
	__u64 energy_uj;     // iot_energy_used_uj()
	__u64 soc;           // iot_battery_soc()
	__s64 log;           // iot_log(...)
	__s64 arm;           // iot_timer_arm(1, 1 min, 0)
	__s64 cancel_twice;  // iot_timer_cancel(2) of a timer never armed: -ENOENT
	__u64 timer_fired;   // expirations seen on timer 1
	__u64 tx_done;       // radio_tx_done runs
	__u64 tx_bytes;      // bytes reported done
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct results);
} results SEC(".maps");

IOT_USE_MAP(iot_txq);

static __always_inline struct results *res(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&results, &zero);
}

SEC("boot")
int on_boot(struct iot_boot_ctx *ctx)
{
	struct results *r = res();
	if (!r)
		return 0;
	__u64 packet[3] = { 1, 2, 3 };
	__u64 msg[2] = { 0x6f6c6c6568ULL, 0 };  // "hello"
	r->sensor = iot_sensor_read(0);
	r->bad_sensor = iot_sensor_read(42);
	r->gpio_in = iot_gpio_read(5);
	r->gpio_bad = iot_gpio_read(77);
	r->gpio_write = iot_gpio_write(6, 1);
	r->send = iot_radio_send(packet, sizeof(packet), 10ULL * 1000000000ULL);
	r->listen = iot_radio_listen(1000000000ULL);
	r->energy_uj = iot_energy_used_uj();
	r->soc = iot_battery_soc();
	r->log = iot_log(msg, sizeof(msg), 1234);
	r->arm = iot_timer_arm(1, 60ULL * 1000000000ULL, 0);
	r->cancel_twice = iot_timer_cancel(2);
	return 0;
}

SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
	struct results *r = res();
	if (r && ctx->timer_id == 1)
		r->timer_fired += ctx->expirations;
	return 0;
}

SEC("radio_tx_done")
int on_done(struct iot_radio_tx_done_ctx *ctx)
{
	struct results *r = res();
	__u32 zero = 0;
	struct iot_txq_state *q = bpf_map_lookup_elem(&iot_txq, &zero);
	if (r && q && q->queued_packets == 0) {
		r->tx_done++;
		r->tx_bytes += ctx->nbytes;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

FIELDS = ("sensor", "bad_sensor", "gpio_in", "gpio_bad", "gpio_write", "send", "listen", "energy_uj", "soc",
          "log", "arm", "cancel_twice", "timer_fired", "tx_done", "tx_bytes")


def make_app(clang, tmp_path, board=None):
    obj = clang.compile(SOURCE, out=tmp_path / "helpers.o")
    manifest = {"version": 1, "name": "helpers", "object": str(obj),
                "programs": {"boot": "boot", "timer": "timer", "radio_tx_done": "radio_tx_done"},
                "sim": {"gpio": [{"pin": 5, "rate_per_hour": 1}], "outputs": [6],
                        "sensors": [{"id": 0, "model": "random_walk", "mean": 12345, "diurnal": 0,
                                     "step_size": 0}]}}
    if board:
        manifest["board"] = board
        manifest["policy"] = "batching"
    (tmp_path / "app.json").write_text(json.dumps(manifest))
    return tmp_path / "app.json"


def read_results(node):
    (value,) = [v for _k, v in node.map_items("results")]
    return dict(zip(FIELDS, struct.unpack("<15q", value)))


def test_every_iot_helper_is_exercised_by_this_test():
    assert all(row[1] + "(" in SOURCE for row in HELPER_TABLE)


def test_iot_helpers_from_c_without_an_energy_model(clang, tmp_path):
    node = Node(make_app(clang, tmp_path), seed=1)
    node.simulate("2m")
    r = read_results(node)
    assert r["sensor"] == 12345
    assert r["bad_sensor"] == -(1 << 63)
    assert r["gpio_in"] == 0 and r["gpio_bad"] == -22 and r["gpio_write"] == 0
    assert node.platform.gpio.outputs == {6: 1}
    assert r["send"] == 0 and r["listen"] == 0
    assert (r["energy_uj"], r["soc"]) == (0, 1000)
    assert r["log"] == 0 and node.runtime.logs == [(0, "helpers", "hello", 1234)]
    assert r["arm"] == 0 and r["cancel_twice"] == -2
    assert r["timer_fired"] == 1  # one-shot after 1 minute
    assert node.runtime.hook_stats["timer"].runs == 1
    assert (r["tx_done"], r["tx_bytes"]) == (1, 24)
    assert node.runtime.summary()["radio"]["tx"]["queued_bytes"] == 24


def test_energy_and_battery_helpers_read_the_energy_model(clang, tmp_path):
    node = Node(make_app(clang, tmp_path, board="nrf52840_dk"), seed=1)
    node.simulate("2m")
    r = read_results(node)
    assert 900 < r["soc"] <= 1000  # a fresh coin cell
    final_uj = node.runtime.energy_used_uj()
    assert 0 < r["energy_uj"] < final_uj  # read at boot, the node kept using energy after
    assert final_uj == int(node.scheduler.energy_used_j() * 1000000)
    assert (r["tx_done"], r["tx_bytes"]) == (1, 24)
    assert node.runtime.clock.now_ns() == 2 * NS_PER_MIN


TAIL_CALLS = r"""
#include "iotbpf.h"

SEC("radio_rx")
int drop_odd(struct iot_radio_rx_ctx *ctx)
{
	return ctx->src & 1 ? IOT_RX_DROP : IOT_RX_PASS;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jt SEC(".maps") = { .values = { [1] = (void *)&drop_odd } };

SEC("radio_rx")
int dispatch(struct iot_radio_rx_ctx *ctx)
{
	bpf_tail_call(ctx, &jt, 1);
	return IOT_RX_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_tail_calls_reach_the_programs_the_object_puts_in_its_prog_array(clang, tmp_path):
    obj = clang.compile(TAIL_CALLS, out=tmp_path / "tail.o")
    (tmp_path / "app.json").write_text(json.dumps({
        "version": 1, "name": "tail", "object": str(obj), "programs": {"radio_rx": "dispatch"}}))
    node = Node(tmp_path / "app.json", sim={})
    for i, src in enumerate((1, 2, 3, 4)):
        node.post("radio_rx", {"src": src}, (i + 1) * 1000)
    result = node.simulate("1s")
    assert result.summary["radio"]["rx"] == {"received": 4, "passed": 2, "dropped": 2, "missed": 0}
