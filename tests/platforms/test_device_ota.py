"""Over-the-air updates on the device runtime under real MicroPython: the same signed images
as a deployment, a counter against replays, and the rollback of a program that keeps faulting."""

import json

import pytest

from conftest import REPO
from iotbpf.ebpf import isa
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.types import MapSpec
from iotbpf.platforms import devimage

STAND_IN_MACHINE = REPO / "tests" / "platforms" / "mcu" / "machine.py"
KEY = bytes(range(16, 48))
CONFIG = {"sensors": [{"id": 0, "adc": 3}]}


def _image(counter, timer_program=None, key=KEY, app="sensor_node"):
    manifest, programs = devimage.load_app(app)
    if timer_program is not None:
        programs = dict(programs)
        programs["timer"] = timer_program
    return devimage.pack(devimage.build_payload(manifest, programs, None, CONFIG if app == "sensor_node" else None,
                                                counter), key)


OTA = """
import sys, os
sys.path.insert(0, '/root/lib')
import machine
machine.set_adc(3, [21000, 22000])
from iotbpf.device import node, hw, ota

class Sink:
    def __init__(self):
        self.lines = []

    def publish(self, topic, payload):
        self.lines.append((topic, payload))
        if topic.endswith("/cmd/reply") or topic.endswith("/faults"):
            print("REPORT", topic.rsplit("/", 1)[1], payload.get("ok"), payload.get("event"), payload.get("reason"))
        return True

def read(path):
    with open(path, "rb") as f:
        return f.read()

sink = Sink()
n = node.start('/root/app', pin_dir='/root/pins', clock=hw.VirtualClock(), sink=sink)
m = 60 * 10**9
n.run_until(3 * m + 1)
print("RUNS", n.stats["timer"][1], n.stats["timer"][2])
for name in ("unsigned", "other_app", "faulty", "faulty", "good_old_counter"):
    print("APPLY", name)
    ota.apply(n, read('/root/updates/%s.dimg' % name), '/root/app')
print("SAME", read('/root/app/app.dimg') == read('/root/updates/faulty.dimg'))
n.run_until(8 * m + 1)
print("RUNS", n.stats["timer"][1], n.stats["timer"][2])
print("ROLLED", read('/root/app/app.dimg') == read('/root/updates/v1.dimg'))
os.rename('/root/updates/good.dimg', '/root/app/update.dimg')
print("POLL", n.poll_update()["ok"], n.image["counter"])
n.run_until(10 * m + 1)
print("RUNS", n.stats["timer"][1], n.stats["timer"][2])
n = node.start('/root/app', pin_dir='/root/pins', clock=hw.VirtualClock(), sink=sink)
print("REBOOT", n.image["counter"], ota.last_counter(n))
"""


def test_ota_update_is_checked_applied_and_rolled_back(micropython):
    faulty = Program.from_asm("mov %r0, 0\nldxdw %r0, [%r0+0]\nexit", name="timer")
    v1 = _image(1)
    files = {"lib/machine.py": STAND_IN_MACHINE, "lib/iotbpf/__init__.py": "",
             "lib/iotbpf/device": REPO / "iotbpf" / "device", "app/app.dimg": v1, "app/key": KEY.hex(),
             "updates/v1.dimg": v1,
             "updates/unsigned.dimg": _image(5, key=None),
             "updates/other_app.dimg": _image(5, app="rx_filter"),
             "updates/faulty.dimg": _image(2, faulty),
             "updates/good_old_counter.dimg": _image(2),
             "updates/good.dimg": _image(3)}
    result = micropython.run(OTA, files=files, core=False)
    lines = result.stdout.splitlines()
    runs = [line.split()[1:] for line in lines if line.startswith("RUNS")]
    assert runs[0] == ["3", "0"]
    reports = [line.split(" ", 4)[1:] for line in lines if line.startswith("REPORT")]
    assert reports[0][:2] == ["reply", "False"] and "bad signature" in reports[0][3]
    assert reports[1][:2] == ["reply", "False"] and "app" in reports[1][3]
    assert reports[2][:2] == ["reply", "True"]
    assert reports[3][:2] == ["reply", "False"] and "counter 2 <= 2" in reports[3][3]  # replay
    assert reports[4][:2] == ["reply", "False"] and "counter 2 <= 2" in reports[4][3]
    assert "SAME True" in lines  # the accepted image boots next time
    # minutes 4..8: three faults, then the rollback restores the previous program (and image)
    assert reports[5][:3] == ["faults", "None", "rollback"], lines
    assert runs[1] == ["5", "3"]
    assert "ROLLED True" in lines
    assert "POLL True 3" in lines
    assert runs[2] == ["7", "3"]
    assert lines[-1] == "REBOOT 3 3"


def test_link_refuses_what_the_device_lacks():
    with pytest.raises(devimage.ImageError, match="helper 6 is not available"):
        devimage.link_program(Program.from_asm("call 6\nexit"), {}, "t")
    with pytest.raises(devimage.ImageError, match="bpf-to-bpf call"):
        local_call = isa.Instruction(0x85, 0, 1, 0, 1)  # call pc + 1 + 1
        devimage.link_program(Program([local_call] + Program.from_asm("exit\nmov %r0, 1\nexit").insns), {}, "t")
    hash_map = MapSpec("h", 1, 4, 8, 4, 0)
    value_of_hash = Program([isa.Instruction(0x18, 1, 2, 0, 0), isa.Instruction(0)] + Program.from_asm(
        "mov %r0, 0\nexit").insns, maps=[hash_map])
    with pytest.raises(devimage.ImageError, match="needs an array map"):
        devimage.link_program(value_of_hash, {"h": 0}, "t")
    with pytest.raises(devimage.ImageError, match="no such instruction"):
        devimage.link_program(Program([isa.Instruction(0x30, 0, 0, 0, 0)] + Program.from_asm("exit").insns), {}, "t")


def test_device_image_reader_refuses_tampered_and_badly_signed_images():
    from iotbpf.device import image

    data = _image(1)
    assert image.parse(data, KEY)["app"] == "sensor_node"
    with pytest.raises(image.ImageError, match="bad signature"):
        image.parse(data, bytes(32))
    tampered = bytearray(data)
    tampered[40] ^= 1
    with pytest.raises(image.ImageError, match="bad signature"):
        image.parse(bytes(tampered), KEY)
    plain = _image(1, key=None)
    assert json.loads(plain[12:-32])["counter"] == 1 and image.parse(plain)["counter"] == 1
    with pytest.raises(image.ImageError, match="bad checksum"):
        image.parse(plain[:-1] + bytes([plain[-1] ^ 1]))
    with pytest.raises(image.ImageError, match="not a device image"):
        image.parse(b"IBPF" + plain[4:])


def test_deploy_update_copies_only_the_image(cli, tmp_path):
    key = tmp_path / "node.key"
    key.write_text(KEY.hex())
    key.chmod(0o600)
    result = cli("deploy", "sensor_node", "--to-folder", tmp_path / "fs", "--update", "--counter", "4", "--key", key)
    assert result.code == 0, result.err
    assert [p.name for p in (tmp_path / "fs").rglob("*") if p.is_file()] == ["update.dimg"]
    bad = cli("deploy", "sensor_node", "--to-folder", tmp_path / "fs", "--update", "--counter", "0")
    assert bad.code == 2 and bad.err.startswith("error: ") and "counter" in bad.err


def test_link_command_writes_a_signed_image(cli, tmp_path):
    key = tmp_path / "node.key"
    key.write_text(KEY.hex())
    key.chmod(0o600)
    out = tmp_path / "s.dimg"
    result = cli("link", "sensor_node", "-o", out, "--key", key, "--board", "nrf52840_dk", "--counter", "7")
    assert result.code == 0, result.err
    from iotbpf.device import image

    payload = image.parse(out.read_bytes(), KEY)
    assert payload["counter"] == 7 and payload["energy"]["capacity_j"] > 0
    short = tmp_path / "short.key"
    short.write_text("abcd")
    bad = cli("link", "sensor_node", "-o", out, "--key", short)
    assert bad.code == 2 and "at least 16 bytes" in bad.err
    key.chmod(0o644)   # a signing key readable by others is refused, with the fix
    shared = cli("link", "sensor_node", "-o", out, "--key", key)
    assert shared.code == 2 and shared.err.count("\n") == 1 and shared.err.startswith("error: key file ")
    assert "readable or writable by others (mode 644); run: chmod 600 " in shared.err


def test_board_refuses_to_boot_a_tampered_image(micropython):
    good = _image(1)
    tampered = bytearray(good)
    tampered[100] ^= 0x01
    code = """
import sys
sys.path.insert(0, '/root/lib')
from iotbpf.device import node, image
try:
    node.start('/root/app', pin_dir=None)
    print("BOOTED")
except image.ImageError as exc:
    print("REFUSED", exc)
"""
    files = {"lib/iotbpf/__init__.py": "", "lib/iotbpf/device": REPO / "iotbpf" / "device",
             "lib/machine.py": STAND_IN_MACHINE, "app/app.dimg": bytes(tampered), "app/key": KEY.hex()}
    assert micropython.run(code, files=files, core=False).stdout.strip() == "REFUSED bad signature"
    files["app/app.dimg"] = good
    assert micropython.run(code, files=files, core=False).stdout.strip() == "BOOTED"
