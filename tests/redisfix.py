"""A real redis-server for tests, on a free loopback port, with nothing saved to disk.

`RedisServer(dir)` starts it and waits until it answers PING; `stop()` kills it (a crash, not a
shutdown) and `start()` brings it back on the same port, so tests can prove the fallback.
.ci/run installs Debian's redis-server when it is missing; tests never skip for want of it."""

import shutil
import socket
import subprocess
import time
import uuid

START_WITHIN = 30.0  # generous: a loaded 2-core machine; only a server that never comes up waits this long


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, directory):
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed: apt-get install -y redis-server (.ci/run does this)"
        self.exe, self.dir, self.port, self.proc = exe, str(directory), free_port(), None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def patient_url(self):
        """The URL with a socket timeout a loaded test machine never reaches (the default 0.5 s
        could, and a test of sharing would see a fallback instead)."""
        return f"{self.url}?socket_timeout=10"

    def fresh_url(self):
        """A patient URL with a namespace of its own: tests sharing this server never see each
        other's keys."""
        return f"{self.patient_url}&namespace=t{uuid.uuid4().hex[:12]}"

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        give_up = time.monotonic() + START_WITHIN
        while not answers_ping(self.port):
            assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
            assert time.monotonic() < give_up, "redis-server did not answer PING"
            time.sleep(0.02)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.stop()
