"""QA: every CLI subcommand given bad input prints ONE line ``error: ...`` and exits 1 or 2.

DESIGN.md's contract: errors a user can cause are one line on stderr, exit 2 (bad usage or input)
or 1 (the command ran and failed), never a traceback and never ``internal error`` (the CLI's last
line of defence for exceptions that should have been an IotbpfError). Each case below is input a
user can really type or a file they can really have (empty, binary garbage, truncated, huge
numbers, wrong JSON types, a folder where a file is expected).

Known bugs are listed in KNOWN_BUGS (case id -> "<owner>: <bug>") and run as ``xfail(strict=True)``;
qa removes an entry when the owner's committed fix makes its case pass (then it fails strictly).
Hanging cases run in a subprocess with a timeout so a regression cannot stall the suite.
"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, shared_dir

SENSOR_NODE = REPO / "apps" / "sensor_node"
SHARED = shared_dir() or REPO.parent / "shared"
GARBAGE = bytes(range(128, 256)) * 8 + b"\x00\xff\xfe" * 50  # never valid UTF-8
OK_ASM = "mov r0, 1\nexit\n"


KNOWN_BUGS = {
    # case id (or test function name): "<owner>: <bug>". Empty: every bug qa found so far is fixed in HEAD
    # (33 cases were strict xfails at 21:43, fixed by 9086e31, 15e475a, 5439d32; 6 more at 22:03, fixed by 095490a).
}


def known_bug(case_id):
    """The strict xfail mark of a known bug, or no mark once it is fixed."""
    if case_id in KNOWN_BUGS:
        return (pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case_id]),)
    return ()


def case(case_id, *values):
    return pytest.param(*values, id=case_id, marks=known_bug(case_id))


def unless_fixed(function):
    """Decorator: a plain test function named in KNOWN_BUGS runs as a strict xfail."""
    for mark in known_bug(function.__name__):
        function = mark(function)
    return function


@pytest.fixture
def files(tmp_path):
    """Bad (and a few good) input files in tmp_path; returns the folder."""
    (tmp_path / "garbage.bin").write_bytes(GARBAGE)
    (tmp_path / "garbage.json").write_bytes(GARBAGE)
    (tmp_path / "garbage.jsonl").write_bytes(GARBAGE)
    (tmp_path / "garbage.trace").write_bytes(GARBAGE)
    (tmp_path / "garbage.h").write_bytes(GARBAGE)
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "list.json").write_text("[1, 2]\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "ok.s").write_text(OK_ASM)
    (tmp_path / "trunc.bin").write_bytes(b"\x95\x00\x00")
    (tmp_path / "hugeimm.s").write_text("mov r0, 99999999999999999999999\nexit\n")
    (tmp_path / "badreg.s").write_text("mov r11, 1\nexit\n")
    (tmp_path / "trunc.o").write_bytes((SENSOR_NODE / "sensor_node.o").read_bytes()[:1500])
    (tmp_path / "trunc.ibpf").write_bytes((SENSOR_NODE / "sensor_node.ibpf").read_bytes()[:300])
    (tmp_path / "hugeret.cbpf").write_text("ret #99999999999999999999999\n")
    (tmp_path / "hugeld.cbpf").write_text("ld #99999999999999999999999\nret a\n")
    (tmp_path / "hugeoff.cbpf").write_text("ldh [99999999999999999999]\nret #1\n")
    # app folders: a copy of sensor_node whose app.json is broken
    garb = tmp_path / "garbapp"
    garb.mkdir()
    (garb / "app.json").write_bytes(GARBAGE)
    manifest = json.loads((SENSOR_NODE / "app.json").read_text())
    inf_app = tmp_path / "infapp"
    shutil.copytree(SENSOR_NODE, inf_app)
    manifest["sim"]["sensors"][0]["mean"] = float("inf")      # json writes Infinity, Python reads it
    (inf_app / "app.json").write_text(json.dumps(manifest))
    id_app = tmp_path / "sensoridapp"
    shutil.copytree(SENSOR_NODE, id_app)
    manifest = json.loads((SENSOR_NODE / "app.json").read_text())
    manifest["sim"]["sensors"][0]["id"] = 10 ** 30              # iot_sensor_read takes a u32 id
    (id_app / "app.json").write_text(json.dumps(manifest))
    board = json.loads((REPO / "boards" / "nrf52840_dk.json").read_text())
    board["battery"]["capacity_mah"] = 1e308                  # x 3.6 C/mAh overflows to inf
    (tmp_path / "board_cap_huge.json").write_text(json.dumps(board))
    board["battery"]["capacity_mah"] = 235
    board["ram_bytes"] = "x"
    (tmp_path / "board_ram_str.json").write_text(json.dumps(board))
    (tmp_path / "empty.s").write_text("")
    fleet = {"version": 1, "name": "farm", "seed": 7, "duration": "1h", "policy": "batching",
             "groups": [{"count": 2, "app": "sensor_node", "board": "nrf52840_dk", "vary": {}}]}
    for name, group_vary, top in (("fleet_loss_5.json", {"link_loss": 5}, {}),
                                  ("fleet_period_0.json", {"sampling_period": 0}, {}),
                                  ("fleet_name_slash.json", {}, {"name": "a/b"}),
                                  ("fleet_name_number.json", {}, {"name": 5})):
        spec = json.loads(json.dumps(fleet))
        spec["groups"][0]["vary"].update(group_vary)
        spec.update(top)
        (tmp_path / name).write_text(json.dumps(spec))
    spec = json.loads(json.dumps(fleet))
    spec["duration"] = "1000000y"
    (tmp_path / "fleet_forever.json").write_text(json.dumps(spec))
    (tmp_path / "profile_huge.xml").write_text(
        '<device name="x"><item name="battery.capacity">1e999</item></device>\n')
    for name, config in (("dev_gpio_str.json", {"gpio": "x"}),
                         ("dev_trigger.json", {"gpio": [{"pin": 5, "trigger": "sideways"}]}),
                         ("dev_hugepin.json", {"gpio": [{"pin": 10 ** 20, "trigger": "falling"}]})):
        (tmp_path / name).write_text(json.dumps(config))
    (tmp_path / "two_bad_slots.bin").write_bytes(bytes([0x02, 0, 0, 0, 0, 0, 0, 0]) * 2 + bytes([0x95] + [0] * 7))
    return tmp_path


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    """A real report from a short simulation, as a dict."""
    path = tmp_path_factory.mktemp("report") / "real_report.json"
    proc = subprocess.run([sys.executable, "-m", "iotbpf", "simulate", str(SENSOR_NODE), "--duration", "10m",
                           "--report", str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(path.read_text())


def assert_one_error_line(r):
    lines = r.err.splitlines()
    assert r.code in (1, 2), (r.code, r.err, r.out[-500:])
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "internal error" not in r.err and "Traceback" not in r.err + r.out, r.err


# (id, argv with {d} = the files folder) -> one error line, exit 1 or 2
CASES = [
    # vm: run / asm / disasm / conformance
    ("run-missing", ["run", "{d}/nosuch.s"]),
    ("run-dir", ["run", "{d}/adir"]),
    ("run-unknown-suffix", ["run", "{d}/garbage.json"]),
    ("run-trunc-bin", ["run", "{d}/trunc.bin"]),
    ("run-huge-imm", ["run", "{d}/hugeimm.s"]),
    ("run-bad-reg", ["run", "{d}/badreg.s"]),
    ("run-bad-mem", ["run", "{d}/ok.s", "--mem", "zz"]),
    ("run-neg-budget", ["run", "{d}/ok.s", "--budget", "-1"]),
    ("run-trunc-o", ["run", "{d}/trunc.o", "--section", "timer"]),
    ("run-trunc-ibpf", ["run", "{d}/trunc.ibpf", "--section", "timer"]),
    ("asm-out-is-dir", ["asm", "{d}/ok.s", "-o", "{d}/adir"]),
    ("asm-empty-source", ["asm", "{d}/empty.s", "-o", "{d}/empty.bin"]),
    ("disasm-trunc", ["disasm", "{d}/trunc.bin"]),
    ("conformance-neg-budget", ["conformance", str(SHARED / "conformance" / "add.data"),
                                "--budget", "-1"]),
    # verifier
    ("verify-two-bad-opcodes", ["verify", "{d}/two_bad_slots.bin"]),
    ("verify-unknown-hook", ["verify", "{d}/ok.s", "--hook", "nosuch"]),
    ("verify-huge-mem-size", ["verify", "{d}/ok.s", "--mem-size", "99999999999999999999999"]),
    # maps: pack / cbpf / map dump
    ("pack-trunc-o", ["pack", "{d}/trunc.o", "-o", "{d}/x.ibpf"]),
    ("cbpf-huge-ret", ["cbpf", "{d}/hugeret.cbpf", "--packet", "00"]),
    ("cbpf-huge-ld", ["cbpf", "{d}/hugeld.cbpf", "--packet", "00"]),
    ("cbpf-huge-offset", ["cbpf", "{d}/hugeoff.cbpf", "--packet", "00"]),
    ("map-dump-garbage", ["map", "dump", "{d}/garbage.bin"]),
    # kernel: header / build / simulate / app manifests / event traces
    ("header-check-binary-file", ["header", "--check", "-o", "{d}/garbage.h"]),
    ("build-non-utf8-manifest", ["build", "{d}/garbapp"]),
    ("simulate-non-utf8-manifest", ["simulate", "{d}/garbapp", "--duration", "1h"]),
    ("simulate-non-utf8-events", ["simulate", "sensor_node", "--duration", "1h", "--events", "{d}/garbage.jsonl"]),
    ("simulate-infinite-sensor-mean", ["simulate", "{d}/infapp", "--duration", "1h"]),
    ("simulate-sensor-id-beyond-u32", ["simulate", "{d}/sensoridapp", "--duration", "10m"]),
    ("simulate-bad-duration", ["simulate", "sensor_node", "--duration", "abc"]),
    ("simulate-unknown-policy", ["simulate", "sensor_node", "--duration", "1h", "--policy", "nosuch"]),
    # energy: boards
    ("simulate-non-utf8-board", ["simulate", "sensor_node", "--duration", "1h", "--board", "{d}/garbage.json"]),
    ("simulate-list-board", ["simulate", "sensor_node", "--duration", "1h", "--board", "{d}/list.json"]),
    ("simulate-board-ram-bytes-str", ["simulate", "sensor_node", "--duration", "1h", "--board",
                                      "{d}/board_ram_str.json"]),
    # report: plot / reporting options
    ("plot-non-utf8-listen-save", ["plot", "{d}/garbage.jsonl", "-o", "{d}/p.png"]),
    ("plot-empty", ["plot", "{d}/empty.json", "-o", "{d}/p.png"]),
    ("simulate-samples-0", ["simulate", "sensor_node", "--duration", "1h", "--samples", "0",
                            "--report", "{d}/r.json"]),
    ("listen-bad-url", ["listen", "http://x", "--duration", "1s"]),
    # lead: fleets, deploy
    ("fleet-non-utf8-spec", ["simulate", "--fleet", "{d}/garbage.json", "--duration", "1h"]),
    ("fleet-bad-cluster-url", ["simulate", "sensor_node", "--fleet", "2", "--backend", "dask",
                               "--cluster", "garbage", "--duration", "1h"]),
    ("fleet-link-loss-above-1", ["simulate", "--fleet", "{d}/fleet_loss_5.json", "--backend", "inprocess"]),
    ("fleet-sampling-period-0", ["simulate", "--fleet", "{d}/fleet_period_0.json", "--backend", "inprocess"]),
    ("fleet-name-with-slash", ["simulate", "--fleet", "{d}/fleet_name_slash.json", "--backend", "inprocess"]),
    ("fleet-name-not-a-string", ["simulate", "--fleet", "{d}/fleet_name_number.json", "--backend", "inprocess"]),
    ("deploy-unknown-policy", ["deploy", "sensor_node", "--to-folder", "{d}/fs", "--policy", "nosuch",
                               "--dry-run"]),
    ("deploy-gpio-not-a-list", ["deploy", "sensor_node", "--to-folder", "{d}/fs", "--device-config",
                                "{d}/dev_gpio_str.json", "--dry-run"]),
    ("deploy-bad-trigger", ["deploy", "sensor_node", "--to-folder", "{d}/fs", "--device-config",
                            "{d}/dev_trigger.json", "--dry-run"]),
    ("deploy-huge-pin", ["deploy", "sensor_node", "--to-folder", "{d}/fs", "--device-config",
                         "{d}/dev_hugepin.json", "--dry-run"]),
    ("deploy-non-utf8-manifest", ["deploy", "{d}/garbapp", "--to-folder", "{d}/fs", "--dry-run"]),
    # platforms: monitor / node
    ("monitor-ina219-without-a-device", ["monitor", "--duration", "1s", "--ina219", "0x40"]),
    ("monitor-non-utf8-ina219-replay", ["monitor", "--duration", "1s", "--ina219-replay", "{d}/garbage.trace"]),
    ("monitor-negative-top", ["monitor", "--duration", "1s", "--top", "-1"]),
    ("monitor-non-utf8-power-profile", ["monitor", "--android-checkin",
                                        str(SHARED / "data" / "batterystats_checkin_emulator.txt"),
                                        "--power-profile", "{d}/garbage.json"]),
    ("monitor-infinite-profile-capacity", ["monitor", "--android-checkin",
                                           str(SHARED / "data" / "batterystats_checkin_emulator.txt"),
                                           "--power-profile", "{d}/profile_huge.xml"]),
    ("node-non-utf8-board", ["node", "sensor_node", "--platform", "linux", "--duration", "1s",
                             "--board", "{d}/garbage.json"]),
    ("node-bad-gpio", ["node", "sensor_node", "--platform", "linux", "--duration", "1s", "--gpio", "BUTTON=abc"]),
    ("bench-unknown-area", ["bench", "nosuch"]),
]


def _params():
    return [case(name, argv) for name, argv in CASES]


@pytest.mark.parametrize("argv", _params())
def test_bad_input_is_one_error_line(cli, files, argv):
    r = cli(*[a.replace("{d}", str(files)) for a in argv])
    assert_one_error_line(r)


@unless_fixed
def test_huge_board_capacity_gives_finite_numbers_or_an_error(cli, files):
    r = cli("simulate", "sensor_node", "--duration", "1h", "--board", files / "board_cap_huge.json")
    if r.code == 0:
        assert "nan" not in r.out and "inf mAh" not in r.out, r.out[-400:]
    else:
        assert_one_error_line(r)


@unless_fixed
def test_plot_refuses_a_report_with_a_wrong_json_type(cli, tmp_path, real_report):
    report = dict(real_report, duration_s="long")
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert_one_error_line(cli("plot", tmp_path / "report.json", "-o", tmp_path / "p.png"))


def _saved_reports(mutate=None):
    """Lines as `iotbpf listen --save` writes them: three samples of one node (battery, energy, apps)."""
    lines = []
    for i in range(3):
        t = i * 60 * 10 ** 9
        for seq, kind, data in (
                (3 * i + 1, "battery", {"lifetime_days": 900.0, "power_w": 1e-5, "soc_percent": 100.0 - i,
                                        "time_to_empty_s": 7.7e7}),
                (3 * i + 2, "energy", {"components": {"cpu": {"energy_j": 0.1 * i, "power_w": 1e-5}},
                                       "energy_j": 0.1 * i, "power_w": 1e-5}),
                (3 * i + 3, "apps", {"apps": {"sensor_node": {"energy_j": 0.01 * i}, "system": {"energy_j": 0.0}}})):
            payload = {"clock": "virtual", "data": data, "kind": kind, "node": "qa1", "schema": "iotbpf.report",
                       "seq": seq, "stream": "5e7cb427cd8c4fc7", "ts_ns": t, "version": 1}
            if mutate is not None:
                mutate(payload)
            lines.append(json.dumps({"payload": payload, "received": 1.7e9 + i, "topic": "iotbpf/qa1/" + kind}))
    return "\n".join(lines) + "\n"


def test_plot_of_well_formed_listen_reports_works(cli, tmp_path):
    """Control for the cases below: the same lines without a wrong type plot fine."""
    (tmp_path / "saved.jsonl").write_text(_saved_reports())
    r = cli("plot", tmp_path / "saved.jsonl", "-o", tmp_path / "p.png")
    assert r.code == 0, r.err


def _set_data(kind, key, value):
    def mutate(payload):
        if payload["kind"] == kind:
            payload["data"][key] = value
    return mutate


# Any node (or anyone on the broker) can publish these; listen --save keeps them; plot must refuse cleanly.
SAVED_WRONG_TYPES = [
    case("soc-percent-str", _set_data("battery", "soc_percent", "full")),
    case("ts-ns-str", lambda p: p.update(ts_ns="later")),
    case("data-list", lambda p: p.update(data=[1])),
    case("apps-str", _set_data("apps", "apps", "x")),
]


@pytest.mark.parametrize("mutate", SAVED_WRONG_TYPES)
def test_plot_of_listen_reports_with_wrong_types_is_one_error_line(cli, tmp_path, mutate):
    (tmp_path / "saved.jsonl").write_text(_saved_reports(mutate))
    r = cli("plot", tmp_path / "saved.jsonl", "-o", tmp_path / "p.png")
    if r.code == 0:  # skipping the bad lines with a note is fine too, as long as nothing crashes
        assert "internal error" not in r.err
    else:
        assert_one_error_line(r)


# Inputs that used to run (nearly) forever: run in a subprocess with a timeout.
HANGS = [
    case("duration-beyond-u64-ns", ["simulate", "sensor_node", "--duration", "1000000y"]),
    case("fleet-duration-beyond-u64-ns", ["simulate", "--fleet", "{d}/fleet_forever.json", "--backend", "inprocess"]),
    case("samples-huge", ["simulate", "sensor_node", "--duration", "1h", "--samples", "999999999999", "--report",
                          "{d}/r.json"]),
]


@pytest.mark.parametrize("argv", HANGS)
def test_huge_values_fail_fast(files, argv):
    tmp_path = files
    argv = [a.replace("{d}", str(tmp_path)) for a in argv]
    try:
        proc = subprocess.run([sys.executable, "-m", "iotbpf", *argv], capture_output=True, text=True,
                              timeout=12, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("still running after 12 s: %s" % " ".join(argv))
    lines = proc.stderr.splitlines()
    assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in proc.stderr


def test_the_instruction_count_script_refuses_a_tree_without_iotbpf():
    # bench/instructions.sh: one `error:` line and exit 2 (without valgrind it says so instead)
    done = subprocess.run(["bash", str(REPO / "bench" / "instructions.sh"), "10d", str(REPO / "apps")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
