"""Test helpers for the report area: a loopback TCP proxy that can cut the network, a node process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

from conftest import REPO, free_port

NODE_SCRIPT = r'''
import sys, time
from iotbpf.report.mqtt import Publisher
url, node, outbox = sys.argv[1:4]
count, interval = int(sys.argv[4]), float(sys.argv[5])
pub = Publisher(url, node, outbox, clock="virtual", keepalive=2, reconnect_min=0.1, reconnect_max=0.5)
pub.start()
start = pub.outbox.last_seq(node)
for i in range(count):
    seq = pub.report("energy", {"power_w": 0.001 * i, "energy_j": 0.5 * i}, ts_ns=(start + i) * 10**9)
    print("seq", seq, flush=True)
    time.sleep(interval)
print("done", flush=True)
ok = pub.flush(30)
print("flushed" if ok else "not flushed", flush=True)
pub.close(timeout=5)
'''


def start_node_process(url: str, node: str, outbox: Path, count: int, interval: float) -> subprocess.Popen:
    """A real node process publishing ``count`` energy reports through its outbox."""
    return subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, url, node, str(outbox), str(count),
                             str(interval)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(REPO))


class TcpProxy:
    """Forwards 127.0.0.1:port to a target port; ``stop()`` cuts every connection, ``start()`` heals."""

    def __init__(self, target_port: int, port: int | None = None):
        self.target_port = target_port
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up = True     # node -> broker bytes are forwarded
        self.down = True   # broker -> node bytes are forwarded

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self) -> None:
        self.up = self.down = True
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def blackhole(self, up: bool = True, down: bool = True) -> None:
        """Silently drop bytes from now on (a cable pulled: no FIN, no RST), per direction."""
        self.up = not up
        self.down = not down

    def stop(self) -> None:
        """Cut the network: drop in-flight bytes, refuse new connections, close existing ones."""
        self.up = self.down = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "down"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if not getattr(self, direction):
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            try:
                sock.close()
            except OSError:
                pass

