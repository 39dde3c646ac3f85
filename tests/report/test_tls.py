"""TLS (mqtts://) and username/password against a real mosquitto with a certificate and a password file."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time

import pytest

from conftest import free_port, missing
from iotbpf.report.mqtt import MqttError, Publisher, Receiver

FAST = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}


@pytest.fixture
def tls_broker(tmp_path):
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    for tool in (mosquitto, shutil.which("openssl"), shutil.which("mosquitto_passwd")):
        if tool is None or not shutil.os.path.exists(tool):
            missing("mosquitto, mosquitto_passwd and openssl")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", tmp_path / "key.pem", "-out", tmp_path / "cert.pem", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", "-c", tmp_path / "passwd", "alice", "s3cret"], check=True,
                   capture_output=True)
    port = free_port()
    (tmp_path / "m.conf").write_text(
        "user %s\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\npassword_file %s\nallow_anonymous false\n"
        % (getpass.getuser(), port, tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "passwd"))
    proc = subprocess.Popen([mosquitto, "-c", tmp_path / "m.conf"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "TLS mosquitto did not start"
            time.sleep(0.05)
    yield port, str(tmp_path / "cert.pem")
    proc.terminate()
    proc.wait(10)


def test_reports_over_tls_with_a_password(tls_broker, tmp_path):
    port, ca = tls_broker
    url = "mqtts://alice:s3cret@127.0.0.1:%d" % port
    rx = Receiver(url, ca_certs=ca, **FAST).start()
    pub = Publisher(url, "secure-1", tmp_path / "o.db", ca_certs=ca, **FAST).start()
    try:
        assert rx.wait_connected(10) and pub.wait_connected(10), (rx.last_error, pub.last_error)
        pub.report("battery", {"soc_percent": 55.5, "lifetime_days": 9.0})
        assert pub.flush(10)
        assert rx.wait_for(lambda r: len(r.reports) == 1, 10)
    finally:
        pub.close()
        rx.stop()
    assert rx.reports[0]["data"]["soc_percent"] == 55.5


def test_wrong_password_or_untrusted_certificate_never_connects(tls_broker, tmp_path):
    port, ca = tls_broker
    bad_password = Publisher("mqtts://alice:wrong@127.0.0.1:%d" % port, "n", tmp_path / "a.db", ca_certs=ca,
                             **FAST).start()
    untrusted = Publisher("mqtts://alice:s3cret@127.0.0.1:%d" % port, "n", tmp_path / "b.db", **FAST).start()
    plain = Publisher("mqtt://alice:s3cret@127.0.0.1:%d" % port, "n", tmp_path / "c.db", **FAST).start()
    try:
        for pub in (bad_password, untrusted, plain):
            pub.report("energy", {"power_w": 1.0, "energy_j": 1.0})
        time.sleep(1.5)
        assert not bad_password.connected and "authori" in (bad_password.last_error or "").lower()
        assert not untrusted.connected and not plain.connected
        assert [p.pending() for p in (bad_password, untrusted, plain)] == [1, 1, 1]   # kept, not lost
    finally:
        for pub in (bad_password, untrusted, plain):
            pub.close(timeout=0.1)


def test_tls_files_must_exist(tmp_path):
    with pytest.raises(MqttError, match="TLS CA file not found"):
        Publisher("mqtts://h", "n", tmp_path / "o.db", ca_certs=str(tmp_path / "nope.pem"))
