"""Helpers for tests: start and stop a real memcached server.

``MemcachedProcess`` runs the ``memcached`` binary (Debian package
``memcached``) on a free loopback TCP port or a unix socket and stops it by
PID.  It is what omcache's own test suite uses, and users may use it for
theirs::

    from omcache.testing import MemcachedProcess

    with MemcachedProcess() as server:
        client = omcache.Client([server.address])
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional, Sequence

__all__ = ["MemcachedProcess", "MemcachedNotFound", "free_port", "find_memcached"]


class MemcachedNotFound(RuntimeError):
    """The memcached binary is not installed (Debian/Ubuntu: apt-get install memcached)."""


def find_memcached() -> Optional[str]:
    """Return the path of the memcached binary, or None."""
    return os.environ.get("MEMCACHED") or shutil.which("memcached") or (
        "/usr/bin/memcached" if os.path.exists("/usr/bin/memcached") else None
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class MemcachedProcess:
    """A real memcached server process on loopback, started and stopped by this object.

    ``unix=True`` listens on a unix socket in a fresh temporary directory
    instead of TCP.  ``extra_args`` are passed to memcached (e.g.
    ``["-I", "2m"]``).  ``address`` is the server spec to give a client.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: Optional[int] = None,
        unix: bool = False,
        memory_mb: int = 64,
        extra_args: Sequence[str] = (),
        start_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.unix = unix
        self.memory_mb = memory_mb
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.socket_path: Optional[str] = None
        self._tmpdir: Optional[str] = None

    @property
    def address(self) -> str:
        """The server spec: "host:port", "[v6]:port" or the unix socket path."""
        if self.unix:
            assert self.socket_path is not None
            return self.socket_path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> "MemcachedProcess":
        """Start memcached and wait until it accepts connections."""
        binary = find_memcached()
        if binary is None:
            raise MemcachedNotFound("memcached is not installed (apt-get install memcached)")
        args = [binary, "-m", str(self.memory_mb), "-U", "0", "-t", "2"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        if self.unix:
            self._tmpdir = tempfile.mkdtemp(prefix="omcache-mc-")
            os.chmod(self._tmpdir, 0o777)  # memcached drops to nobody before binding
            self.socket_path = os.path.join(self._tmpdir, "memcached.sock")
            args += ["-s", self.socket_path, "-a", "0777"]
        else:
            if self.port is None:
                self.port = free_port(self.host)
            args += ["-l", self.host, "-p", str(self.port)]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"memcached exited with {self.proc.returncode}: {err.strip()}")
            if self._accepts():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"memcached did not accept connections within {self.start_timeout}s")
            time.sleep(0.02)

    def _accepts(self) -> bool:
        try:
            if self.unix:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: object = self.socket_path
            else:
                family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                target = (self.host, self.port)
            with s:
                s.settimeout(0.5)
                s.connect(target)  # type: ignore[arg-type]
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop memcached (SIGTERM, then SIGKILL) and remove its socket directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its connections open but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> "MemcachedProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
