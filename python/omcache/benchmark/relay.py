"""A TCP relay that holds back every reply by a fixed delay: the benchmark's latency.

    python -m omcache.benchmark.relay --target 127.0.0.1:11211 [--delay-ms 1] [--port 0]

Prints ``listening HOST:PORT`` on stdout once it accepts connections, then
relays until it is terminated (SIGTERM, SIGINT) or its stdin is closed.  The
runner (omcache.benchmark.runner) runs it in its own process, so that its
work shows neither in a worker's CPU time nor under the runner's GIL.

Each connection accepted is relayed to a new connection to the target.
Requests go to the server at once; each piece of a reply read from the
server is sent on to the client ``delay`` after it was read, in order.  Replies
that are in flight together are held back together, not one after the
other, as on a network link whose one-way delay is ``delay``: a client that
pipelines (or several connections in parallel) keeps several requests in
flight and is not slowed down by each one's wait.  That is what a slower
server would not show (the embedded server's ``delay`` fault holds back one
response batch after another on a connection), and what threads sharing one
client are for.

The delay is a sleep until the piece is due (``time.sleep``, microsecond
resolution on Linux); the relay's own cost (two more hops on loopback, a
thread waking up) adds tens of microseconds to it.  Every client measured
through it pays the same.
"""

from __future__ import annotations

import argparse
import collections
import signal
import socket
import sys
import threading
import time
from typing import Callable, Deque, List, Optional, Sequence, Tuple

__all__ = ["DelayRelay", "main"]


class DelayRelay:
    """Listens on loopback and relays every connection to TARGET, each reply piece DELAY seconds late.

    ``start()`` binds and starts accepting; ``address`` is then "HOST:PORT";
    ``stop()`` closes the listener and every relayed connection.  Threads:
    one accepting, and three per connection (requests up, replies read,
    replies sent when due).
    """

    def __init__(self, target: str, delay: float, host: str = "127.0.0.1", port: int = 0) -> None:
        if delay < 0:
            raise ValueError(f"the delay must be >= 0 seconds, not {delay!r}")
        thost, sep, tport = target.rpartition(":")
        if not sep or not tport.isdigit():
            raise ValueError(f"target {target!r}: expected HOST:PORT")
        self.target = (thost.strip("[]"), int(tport))
        self.delay = delay
        self._bind = (host, port)
        self._listener: Optional[socket.socket] = None
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        """Where clients connect: "HOST:PORT" (only once started)."""
        if self._listener is None:
            raise RuntimeError("the relay is not started")
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> "DelayRelay":
        """Bind, listen and accept in a daemon thread; return self."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(self._bind)
        ls.listen(128)
        self._listener = ls
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        self._stopped.set()
        with self._lock:
            socks, self._socks = self._socks, []
        if self._listener is not None:
            socks.append(self._listener)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, server]
            _Pair(client, server, self.delay, self._forget).start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._socks = [s for s in self._socks if all(s is not t for t in socks)]


class _Pair:
    """One relayed connection: requests up at once, replies down when due."""

    def __init__(
        self, client: socket.socket, server: socket.socket, delay: float, closed: Callable[..., None]
    ) -> None:
        self.client, self.server, self.delay, self.closed = client, server, delay, closed
        self.due: Deque[Tuple[float, bytes]] = collections.deque()
        self.cond = threading.Condition()
        self.server_done = False

    def start(self) -> None:
        for name, fn in (("up", self._up), ("read", self._read_replies), ("send", self._send_replies)):
            threading.Thread(target=fn, name=f"relay-{name}", daemon=True).start()

    def _up(self) -> None:
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                self.server.sendall(data)
        except OSError:
            pass
        _shutdown(self.server, socket.SHUT_WR)

    def _read_replies(self) -> None:
        clock = time.monotonic
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                with self.cond:
                    self.due.append((clock() + self.delay, data))
                    self.cond.notify()
        except OSError:
            pass
        with self.cond:
            self.server_done = True
            self.cond.notify()

    def _send_replies(self) -> None:
        clock = time.monotonic
        try:
            while True:
                with self.cond:
                    while not self.due and not self.server_done:
                        self.cond.wait()
                    if not self.due:
                        break
                    when, data = self.due.popleft()
                wait = when - clock()
                if wait > 0:
                    time.sleep(wait)
                self.client.sendall(data)
        except OSError:
            pass
        _shutdown(self.client, socket.SHUT_RDWR)
        self.closed(self.client, self.server)
        self.client.close()
        self.server.close()


def _shutdown(s: socket.socket, how: int) -> None:
    try:
        s.shutdown(how)
    except OSError:
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a relay as the command line says until SIGTERM, SIGINT or the end of stdin."""
    ap = argparse.ArgumentParser(
        prog="python -m omcache.benchmark.relay", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--target", required=True, help="HOST:PORT of the server to relay to")
    ap.add_argument("--delay-ms", type=float, default=1.0, help="how late each reply piece is sent on (default 1)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (default: a free one)")
    args = ap.parse_args(argv)
    try:
        relay = DelayRelay(args.target, args.delay_ms / 1000.0, port=args.port).start()
    except (ValueError, OSError) as e:
        ap.error(str(e))
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())

    def watch_stdin() -> None:
        try:
            sys.stdin.read()
        except (OSError, ValueError):
            pass
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"listening {relay.address}", flush=True)
    done.wait()
    relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
