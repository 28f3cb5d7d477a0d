"""Helpers for tests: an embedded memcached-compatible server, and real memcached.

``EmbeddedServer`` runs omcache's own memcached-compatible server (written in
Go, inside the engine) in this process: no memcached installation needed,
binary/text/meta protocols, TCP or unix socket, and fault injection
(``set_fault("stall")``...).  ``MemcachedProcess`` runs the real ``memcached``
binary (Debian package ``memcached``) on a free loopback port or a unix socket
and stops it by PID::

    from omcache.testing import EmbeddedServer

    with EmbeddedServer() as server:
        client = omcache.Client([server.address])

For pytest, add ``pytest_plugins = ["omcache.testing"]`` to a conftest.py to
get the ``omcache_server`` (embedded) and ``memcached_server`` (real memcached,
skipped when it is not installed) fixtures.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import ModuleType
from typing import Dict, Iterator, Optional, Sequence, Tuple

from .exceptions import ConfigError

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pytest = None  # type: ignore[assignment]

__all__ = [
    "EmbeddedServer",
    "MemcachedProcess",
    "MemcachedNotFound",
    "free_port",
    "find_memcached",
    "omcache_server",
    "memcached_server",
]


class _PortTaken(Exception):
    """Another process holds the port memcached was to listen on."""


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
    ``env`` adds environment variables for memcached (``SASL_CONF_PATH``).
    ``plain_probe=False`` is for servers that do not answer a plaintext,
    unauthenticated ``stats`` (``-Z``, ``-S``, ``-Y``): the server is then
    ready once it accepts a TCP connection and is still running a moment
    later (it exits when another process holds the port).
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
        env: Optional[Dict[str, str]] = None,
        plain_probe: bool = True,
    ) -> None:
        self.env = dict(env or {})
        self.plain_probe = plain_probe
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
        """Start memcached and wait until it accepts connections.

        The server is checked to be this process (by the pid it reports), not
        another one that took the port first; an automatically chosen port is
        then picked again.
        """
        binary = find_memcached()
        if binary is None:
            raise MemcachedNotFound("memcached is not installed (apt-get install memcached)")
        auto_port = self.port is None and not self.unix
        for attempt in range(5):
            try:
                return self._start_once(binary)
            except _PortTaken:
                self.stop()
                if not auto_port or attempt == 4:
                    raise RuntimeError(f"port {self.port} on {self.host} is taken by another server")
                self.port = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, binary: str) -> "MemcachedProcess":
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
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                if "Address already in use" in err or "failed to listen" in err:
                    raise _PortTaken(err)
                raise RuntimeError(f"memcached exited with {self.proc.returncode}: {err.strip()}")
            if not self.plain_probe:
                if self._accepts():
                    time.sleep(0.05)
                    if self.proc.poll() is None:
                        return self
                    continue
                pid = None
            else:
                pid = self._served_pid()
            if pid is not None:
                if pid != self.proc.pid:
                    raise _PortTaken(f"pid {pid} answers on {self.address}")
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"memcached did not accept connections within {self.start_timeout}s")
            time.sleep(0.02)

    def _accepts(self) -> bool:
        """Whether a TCP connection (or a unix socket one) to the server succeeds."""
        try:
            if self.unix:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: object = self.socket_path
            else:
                family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                target = (self.host, self.port)
            with s:
                s.settimeout(1.0)
                s.connect(target)  # type: ignore[arg-type]
            return True
        except OSError:
            return False

    def _served_pid(self) -> Optional[int]:
        """The pid of the memcached answering at our address, or None if none answers yet."""
        try:
            if self.unix:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: object = self.socket_path
            else:
                family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                target = (self.host, self.port)
            with s:
                s.settimeout(1.0)
                s.connect(target)  # type: ignore[arg-type]
                s.sendall(b"stats\r\n")
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        return None
                    data += chunk
        except OSError:
            return None
        for line in data.split(b"\r\n"):
            if line.startswith(b"STAT pid "):
                return int(line.split()[2])
        return None

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

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP the server: it keeps its connections open but answers nothing.

        Returns once every thread of the server is stopped (SIGSTOP is
        delivered asynchronously: a request sent right after the signal may
        otherwise still be answered). Where /proc is not available it returns
        at once.
        """
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        tasks = f"/proc/{self.proc.pid}/task"
        deadline = time.monotonic() + timeout
        while not _all_stopped(tasks):
            if time.monotonic() > deadline:
                raise RuntimeError(f"memcached (pid {self.proc.pid}) did not stop within {timeout}s of SIGSTOP")
            time.sleep(0.001)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> "MemcachedProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _all_stopped(tasks: str) -> bool:
    """True if every thread listed under /proc/<pid>/task is stopped (state
    T), or if there is no such directory to look at."""
    try:
        tids = os.listdir(tasks)
    except FileNotFoundError:
        return True
    for tid in tids:
        try:
            with open(f"{tasks}/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:  # the thread exited
            continue
        # "pid (comm) state ...": comm may hold spaces and parentheses
        if stat[stat.rindex(")") + 2] not in "Tt":
            return False
    return True


class EmbeddedServer:
    """omcache's embedded memcached-compatible server, running inside this process.

    ``host``/``port``: TCP listen address (port 0 picks a free one);
    ``unix_path``: also/instead listen on a unix socket.  ``memory_mb`` and
    ``item_size_max`` mirror memcached's -m and -I.  ``tls_cert_file`` and
    ``tls_key_file`` (PEM) make the TCP listener speak TLS only, as memcached
    ``-Z`` does, to try a client's TLS setup without memcached (the unix
    socket stays plaintext).  ``username`` and ``password`` make every
    connection authenticate first, as memcached ``-S`` (SASL PLAIN, binary
    protocol) and ``-Y`` (ASCII authentication, text and meta) do.  Not a
    replacement for memcached: it is for demos, unit tests and fault
    injection.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: Optional[str] = None,
        memory_mb: int = 64,
        item_size_max: int = 1024 * 1024,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
    ) -> None:
        lines = []
        if (username is None) != (password is None):
            raise ConfigError("requiring authentication needs both username and password")
        if username is not None and password is not None:
            if not username or any(ch in username for ch in " \r\n\x00"):
                raise ConfigError(f"invalid username {username!r}")
            if any(ch in password for ch in "\r\n\x00"):
                raise ConfigError("the password holds a line break or NUL")
            lines.append(f"auth_user={username} {password}")
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ConfigError("serving TLS needs both tls_cert_file and tls_key_file")
        for name, path in (("tls_cert_file", tls_cert_file), ("tls_key_file", tls_key_file)):
            if path is not None:
                if not isinstance(path, str) or "\n" in path or not os.path.isfile(path) or not os.access(path, os.R_OK):
                    raise ConfigError(f"{name} {path!r} is not a readable file")
                lines.append(f"{name}={os.path.abspath(path)}")
        if unix_path is None or port:
            h = f"[{host}]" if ":" in host else host
            lines.append(f"addr={h}:{port}")
        if unix_path is not None:
            lines.append(f"unix={unix_path}")
        lines.append(f"max_bytes={memory_mb * 1024 * 1024}")
        lines.append(f"item_size_max={item_size_max}")
        self._config = "\n".join(lines)
        self._handle = 0
        self._pid = 0
        self.tcp_address = ""
        self.unix_path = unix_path or ""

    @property
    def address(self) -> str:
        """The server spec to give a client: "host:port", or the unix path if no TCP."""
        return self.tcp_address or self.unix_path

    def _core(self) -> "Tuple[ModuleType, ModuleType]":
        from . import _engine

        if not self._handle or self._pid != os.getpid():
            raise RuntimeError("embedded server is not running in this process")
        return _engine, _engine.core()

    def start(self) -> "EmbeddedServer":
        """Start serving; returns self."""
        from . import _engine

        c = _engine.core()
        r = _engine.take_bytes(c, c.bind_ServerStart(self._config))
        if r[0] != _engine.OK:
            raise _engine.packed_error(c, r)
        self._handle = int.from_bytes(r[1:9], "little")
        self._pid = os.getpid()
        pos = 9
        fields = []
        for _ in range(2):
            n = int.from_bytes(r[pos : pos + 4], "little")
            fields.append(r[pos + 4 : pos + 4 + n].decode())
            pos += 4 + n
        self.tcp_address, self.unix_path = fields
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._handle and self._pid == os.getpid():
            eng, c = self._core()
            r = c.bind_ServerStop(self._handle)
            self._handle = 0
            if r != eng.OK:
                eng.raise_for(c, r)
        self._handle = 0

    def set_fault(self, spec: str) -> None:
        """Inject faults, replacing those set before; ``""`` or ``"none"`` clears them.

        ``spec`` is a comma-separated list of the faults below.  Faults that
        act on responses apply to each *response batch*: the responses to the
        requests that arrived together (one response for a client that waits
        for each answer).  Durations are Go durations: ``"200ms"``, ``"1.5s"``.

        ``delay=D``
            Wait D before sending each response batch.  Commands are
            executed at once; only the answers are late.
        ``stall``
            Read requests and discard them: nothing is executed, nothing is
            answered.  Connections stay open (this is what :meth:`pause` sets).
        ``close-mid-response``
            Send the first half of each response batch, then close the
            connection.
        ``close-mid-response=N``
            Send the first N bytes of each response batch (at most all but
            one byte), then close the connection.
        ``corrupt``
            Send garbage of the same length instead of each response batch:
            a text-protocol connection still sees CRLF-terminated lines, a
            binary one gets a header with a bad magic byte.
        ``refuse``
            Stop listening: *new* connections fail with ECONNREFUSED, as
            against a stopped memcached.  Connections already established
            stay up and keep being served.
        ``hangup``
            Accept new connections and close them at once, before reading
            anything.  Established connections are not affected.
        ``blackhole``
            Stop reading: new connections are accepted but never read from;
            established ones stop after their current request.  Nothing is
            closed, so clients see timeouts.
        ``slow-read=D``
            Before each read of at most 4 KiB, sleep D, so that a client's
            writes back up (large values, long pipelines).  A read already
            waiting for data when the fault is set is not slowed.

        Raises :class:`omcache.ConfigError` (a ValueError) for an unknown
        fault or a bad argument, and sets nothing then.
        """
        eng, c = self._core()
        r = c.bind_ServerSetFault(self._handle, spec)
        if r != eng.OK:
            eng.raise_for(c, r)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.set_fault("")

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock forward, expiring items without sleeping."""
        eng, c = self._core()
        r = c.bind_ServerAdvanceClock(self._handle, int(seconds * 1000))
        if r != eng.OK:
            eng.raise_for(c, r)

    def pause(self) -> None:
        """Stop answering (like SIGSTOP on memcached): connections stay open, replies never come."""
        self.set_fault("stall")

    def resume(self) -> None:
        """Undo pause() (clears every fault)."""
        self.clear_faults()

    def item_count(self) -> int:
        """The number of items the server holds."""
        _, c = self._core()
        return int(c.bind_ServerItemCount(self._handle))

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if pytest is not None:

    @pytest.fixture
    def omcache_server() -> Iterator[EmbeddedServer]:
        """An embedded memcached-compatible server on a free loopback port."""
        with EmbeddedServer() as server:
            yield server

    @pytest.fixture
    def memcached_server() -> Iterator[MemcachedProcess]:
        """A real memcached on a free loopback port (skipped if memcached is not installed)."""
        if find_memcached() is None:
            pytest.skip("memcached is not installed")
        with MemcachedProcess() as server:
            yield server
