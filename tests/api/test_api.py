"""The public Python API behaves as documented (docs/python-api.md): programs from C and assembly,
typed map views on nodes, result properties, policy comparison, and clear errors for bad input."""

import json
import pydoc
import struct

import pytest

import iotbpf
from iotbpf import IotbpfError
from iotbpf.ebpf.errors import LoadError, VerifierError
from iotbpf.ebpf.vm import BPFFault

COUNTER_C = r"""
#include "iotbpf.h"

struct hit {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct hit);
} hits SEC(".maps");

/* A standalone run passes the input in r1 and its length in r2. */
SEC("counter")
int count(__u8 *data, __u64 len)
{
	if (len < 1)
		return 0;
	__u32 key = data[0];
	struct hit zero = {0, 0};
	bpf_map_update_elem(&hits, &key, &zero, BPF_NOEXIST);
	struct hit *h = bpf_map_lookup_elem(&hits, &key);
	if (!h)
		return 0;
	h->packets += 1;
	h->bytes += len;
	return key;
}

char LICENSE[] SEC("license") = "GPL";
"""

SIMPLE_C = r"""
#include "iotbpf.h"

SEC("a") int first(void *ctx) { return 1; }
SEC("b") int second(void *ctx) { return 2; }
char LICENSE[] SEC("license") = "GPL";
"""


# ------------------------------------------------------------------ Program

def test_program_from_asm_runs_on_both_engines_and_round_trips():
    prog = iotbpf.Program.from_asm("mov %r0, 0\nldxb %r2, [%r1]\nadd %r0, %r2\nexit")
    assert prog.run(mem=b"\x2a") == 42
    assert prog.run(mem=b"\x07", engine="compiled") == 7
    assert iotbpf.Program.from_asm(prog.disasm()).to_bytes() == prog.to_bytes()
    assert len(prog) == 4


def test_program_fault_names_pc_and_instruction():
    prog = iotbpf.Program.from_asm("ldxdw %r0, [%r1+100]\nexit")
    with pytest.raises(BPFFault) as info:
        prog.run(mem=b"\0" * 8)
    assert str(info.value).startswith("pc 0: ldxdw %r0, [%r1+100]:")


def test_verify_accepts_checked_access_and_rejects_unchecked(tmp_path):
    ok = iotbpf.Program.from_asm("mov %r0, 0\njge %r2, 1, +1\nexit\nldxb %r0, [%r1]\nexit")
    assert ok.verify().max_path_insns <= 5          # the load is guarded by r2 >= 1
    bad = iotbpf.Program.from_asm("ldxb %r0, [%r1]\nexit")
    with pytest.raises(VerifierError) as info:
        bad.verify()
    assert "pc 0" in str(info.value)
    assert bad.verify(mem_size=1) is not None


def test_from_c_compiles_runs_and_reads_typed_map(clang):
    prog = iotbpf.Program.from_c(COUNTER_C, section="counter")
    assert "call 1" in prog.disasm()
    prog.verify(mem_size=4)
    assert prog.run(mem=b"\x05abc") == 5
    assert prog.run(mem=b"\x05a", engine="compiled") == 5
    assert prog.run(mem=b"\x09") == 9
    hits = prog.maps["hits"]
    assert hits[5] == {"packets": 2, "bytes": 6}
    assert dict(hits) == {5: {"packets": 2, "bytes": 6}, 9: {"packets": 1, "bytes": 1}}
    hits[5] = {"packets": 100}
    assert hits[5] == {"packets": 100, "bytes": 0}
    assert prog.run(mem=b"\x05") == 5
    assert hits[5]["packets"] == 101
    del hits[9]
    assert 9 not in hits and len(hits) == 1


def test_from_c_file_and_section_choice(clang, tmp_path):
    src = tmp_path / "two.c"
    src.write_text(SIMPLE_C)
    assert iotbpf.Program.from_c(src, section="b").run() == 2
    assert iotbpf.Program.from_c(str(src), section="a").run() == 1
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c(src)
    assert "a" in str(info.value) and "b" in str(info.value)


def test_from_c_reports_compile_errors_and_missing_files(clang, tmp_path):
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c("int broken(void) { return undeclared_thing; }\n")
    assert "undeclared_thing" in str(info.value)
    assert str(info.value).startswith("clang could not compile program.c: program.c:1:")
    one_line = '__attribute__((section("x"))) int f(void *ctx) { return 3; }'
    assert iotbpf.Program.from_c(one_line).run() == 3
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c(tmp_path / "missing.c")
    assert "not found" in str(info.value)
    with pytest.raises(IotbpfError) as info:
        iotbpf.Program.from_c(SIMPLE_C, section="a", cpu="v9")
    assert "cpu" in str(info.value)


def test_from_c_without_clang_is_a_clear_error(monkeypatch):
    from iotbpf.api import clang

    monkeypatch.setattr(clang, "find_clang", lambda: None)
    with pytest.raises(IotbpfError) as info:
        iotbpf.Program.from_c(SIMPLE_C, section="a")
    assert "clang-19 not found" in str(info.value)


# ------------------------------------------------------------------ Node and maps

def test_node_maps_read_and_write_typed_values():
    node = iotbpf.Node("rx_filter", seed=3)
    maps = node.maps
    assert {"blocklist", "rates", "limits", "verdicts", "iot_policy"} <= set(maps)
    maps["blocklist"][99] = 1
    assert node.map("blocklist").lookup(struct.pack("<I", 99)) == struct.pack("<I", 1)
    result = node.simulate("6h")
    verdicts = dict(node.maps["verdicts"])
    assert set(verdicts) == {0, 1, 2} and verdicts[1] > 0          # source 99 was blocked
    raw = dict((struct.unpack("<I", k)[0], struct.unpack("<Q", v)[0]) for k, v in node.map_items("verdicts"))
    assert raw == verdicts
    rates = node.maps["rates"]
    some = next(iter(rates))
    assert set(rates[some]) == {"window_start_ns", "packets", "dropped"}
    assert result.summary["radio"]["rx"]["dropped"] >= verdicts[1]


def test_node_maps_global_variables_and_queues():
    node = iotbpf.Node("sensor_node", seed=1)
    result = node.simulate(days=1)
    stats = node.maps["stats"]
    assert stats["count"] == result.hook("timer")["runs"] == 1439
    assert stats.value["count"] == 1439 and set(stats) >= {"count", "sum", "min", "max"}
    stats["alarms"] = 5
    assert node.maps["stats"]["alarms"] == 5
    assert node.maps[".bss.stats"][0]["stats"]["alarms"] == 5
    filling = node.maps["filling"]                     # struct batch {n; pad; struct reading r[]}
    readings = filling["r"][:filling["n"]]
    assert readings and set(readings[0]) == {"t_s", "value"}
    outbox = node.maps["outbox"]                       # a queue of struct batch
    assert outbox.type == "queue"
    outbox.push({"n": 1, "r": [{"t_s": 5, "value": -7}]})
    outbox.push({"n": 2})
    assert len(outbox) == 2 and outbox.values()[0]["r"][0] == {"t_s": 5, "value": -7}
    assert outbox.peek()["n"] == 1 and outbox.pop()["n"] == 1 and outbox.pop()["n"] == 2
    with pytest.raises(IndexError):
        outbox.pop()
    with pytest.raises(IotbpfError, match="no keys"):
        outbox[0]


def test_well_known_maps_are_decoded_from_the_kernel_tables():
    node = iotbpf.Node("sensor_node", seed=1)
    result = node.simulate("1d", samples=0)
    txq = node.maps["iot_txq"][0]
    assert txq["sent_packets"] == result.summary["radio"]["tx"]["sent"]
    demand = dict(node.maps["iot_app_demand"])
    assert len(demand) == 1 and set(next(iter(demand.values()))) == {"tx_bytes", "rx_bytes", "tx_packets",
                                                                       "rx_packets"}
    from iotbpf.kernel.maps import policy_index

    policy = node.maps["iot_policy"]
    assert policy[policy_index("low_battery_permille")] == 200
    policy[policy_index("low_battery_permille")] = 150
    assert node.map("iot_policy").lookup(struct.pack("<I", 3)) == struct.pack("<Q", 150)


def test_map_view_bad_input_is_clear():
    node = iotbpf.Node("rx_filter")
    with pytest.raises(IotbpfError, match="no map or global variable 'nope'.*blocklist"):
        node.maps["nope"]
    blocklist = node.maps["blocklist"]
    with pytest.raises(IotbpfError, match="3 bytes, the map takes 4-byte keys"):
        blocklist[b"abc"] = 1
    with pytest.raises(IotbpfError, match="does not fit in 4 bytes"):
        blocklist[1 << 40] = 1
    with pytest.raises(IotbpfError, match="expected an integer"):
        blocklist[1] = "x"
    with pytest.raises(KeyError):
        blocklist[12345]
    with pytest.raises(IotbpfError, match="no member 'nope'"):
        node.maps["limits"][0] = {"nope": 1}
    with pytest.raises(IotbpfError, match="declared by the programs"):
        node.maps["x"] = 1


def test_result_properties_plot_and_json(tmp_path):
    node = iotbpf.Node("sensor_node", board="nrf52840_dk", policy="batching", seed=1)
    result = node.simulate("2d")
    energy = result.summary["energy"]
    assert result.energy == pytest.approx(energy["energy_j"]) and result.energy > 0
    assert result.lifetime_days == pytest.approx(energy["lifetime_days"])
    assert result.average_current_a > 0
    assert list(result.per_app) == sorted(result.per_app, key=lambda a: -result.per_app[a])
    assert sum(result.per_app.values()) == pytest.approx(result.energy, rel=1e-6)
    assert 0 < result.battery["soc"] <= 1
    data = json.loads(result.to_json())
    assert data["version"] == 1 and data["summary"]["energy"]["energy_j"] == pytest.approx(result.energy)
    fig = result.plot(tmp_path / "run.png")
    assert (tmp_path / "run.png").stat().st_size > 10000 and len(fig.axes) >= 3
    assert len(result.plot(view="soc").axes) >= 1
    with pytest.raises(IotbpfError, match="unknown plot view 'bogus'"):
        result.plot(view="bogus")
    assert result.save_report(tmp_path / "run.json").endswith("run.json")
    assert json.loads((tmp_path / "run.json").read_text())["version"] == 1


def test_sampling_for_plots_does_not_change_results():
    plain = iotbpf.Node("sensor_node", seed=4).simulate("2d", samples=0)
    sampled = iotbpf.Node("sensor_node", seed=4).simulate(days=2)
    assert plain.text() == sampled.text() and plain.to_json() == sampled.to_json()
    with pytest.raises(IotbpfError, match="no time series"):
        plain.plot()


def test_result_without_energy_model_says_so(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    manifest = json.loads((iotbpf.api.find_app("rx_filter")).read_text())
    src_dir = iotbpf.api.find_app("rx_filter").parent
    for name in ("rx_filter.o", "rx_filter.c"):
        (app / name).write_bytes((src_dir / name).read_bytes())
    manifest.pop("board", None)
    manifest.pop("policy", None)
    manifest.pop("bundle", None)
    (app / "app.json").write_text(json.dumps(manifest))
    result = iotbpf.Node(app).simulate("1h")
    with pytest.raises(IotbpfError, match="without an energy model"):
        _ = result.energy


def test_simulate_bad_input():
    with pytest.raises(IotbpfError, match="positive"):
        iotbpf.Node("sensor_node").simulate(days=-1)
    with pytest.raises(IotbpfError, match="not both"):
        iotbpf.Node("sensor_node").simulate("1d", days=1)
    with pytest.raises(IotbpfError):
        iotbpf.Node("sensor_node").simulate("ten days")
    with pytest.raises(IotbpfError, match="not found"):
        iotbpf.Node("./no/such/app")
    node = iotbpf.Node("sensor_node")
    node.simulate("1h")
    with pytest.raises(IotbpfError, match="already run"):
        node.simulate("1h")


# ------------------------------------------------------------------ compare

def test_compare_rows_match_the_cli_table(cli):
    rows = iotbpf.compare(["always_on", "batching", "oracle"], app="sensor_node", days=1, seed=2)
    assert [r["policy"] for r in rows] == ["always_on", "batching", "oracle (live)", "oracle"]
    assert rows.row("oracle")["ratio_to_oracle"] == pytest.approx(1.0)
    assert rows.row("always_on")["energy_j"] > rows.row("batching")["energy_j"] >= rows.row("oracle")["energy_j"]
    r = cli("simulate", "sensor_node", "--duration", "1d", "--seed", "2", "--compare", "always_on,batching,oracle")
    assert r.code == 0 and r.out == rows.text()
    assert iotbpf.compare("batching,always_on", duration="6h").row("batching")["deadline_misses"] == 0


def test_compare_bad_input():
    with pytest.raises(IotbpfError, match="unknown policy 'fastest'.*always_on"):
        iotbpf.compare(["fastest"], days=1)
    with pytest.raises(IotbpfError, match="at least one policy"):
        iotbpf.compare([], days=1)
    with pytest.raises(IotbpfError, match="positive"):
        iotbpf.compare(["batching"], days=0)


# ------------------------------------------------------------------ documentation

def test_public_objects_are_documented():
    for name in ("Program", "Node", "SimulationResult", "compare"):
        obj = getattr(iotbpf, name)
        assert obj.__doc__ and len(obj.__doc__) > 80, name
    text = pydoc.render_doc(iotbpf.Node, renderer=pydoc.plaintext)
    for word in ("simulate", "maps", "board", "seed", "post", "run_realtime", "days"):
        assert word in text
    for cls in (iotbpf.Program, iotbpf.Node, iotbpf.SimulationResult, iotbpf.MapView):
        for attr in dir(cls):
            if not attr.startswith("_"):
                member = getattr(cls, attr)
                if callable(member) or isinstance(member, property):
                    doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__
                    assert doc, "%s.%s has no docstring" % (cls.__name__, attr)


def test_docstring_examples_run():
    import doctest
    import importlib
    import pkgutil

    import iotbpf.api

    total = 0
    for info in pkgutil.iter_modules(iotbpf.api.__path__):
        module = importlib.import_module("iotbpf.api." + info.name)
        failures, tried = doctest.testmod(module)
        assert failures == 0, info.name
        total += tried
    assert total >= 5
