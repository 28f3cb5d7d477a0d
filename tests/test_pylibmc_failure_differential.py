"""Failure handling of omcache_pylibmc against the real pylibmc 1.6.3, step by step.

Each scenario runs the same calls on the real pylibmc (libmemcached 1.1.4)
and on omcache_pylibmc, side by side on one timeline, against real memcached
processes that are refused (nothing listens), killed (SIGKILL) or stalled
(SIGSTOP): what each call returns, or the class of what it raises, is
recorded for both and compared step by step. Where they differ on purpose the
difference is listed in DIFFERENCES with its reason (docs/pylibmc.md,
"Deliberate differences", item 6), and the test requires exactly the listed
outcomes on both sides: an unlisted difference fails, and so does a listed
one that went away.

libmemcached keeps time in whole seconds: a server in its retry window is
tried again once ``next_retry < now`` (both in seconds), i.e. between
retry_timeout and retry_timeout + 1 s after the failure. The pauses are
chosen so that both clients have certainly, or certainly not, reached their
retry: a call right after another is inside the window, one RETRY_PAUSE
later (retry_timeout + 1 s + room) is past it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

import omcache_pylibmc
from omcache.testing import MemcachedProcess, free_port

# The references' versions are checked once per session (conftest.py's
# reference_clients fixture): a wrong or missing one stops this module.
pytestmark = [pytest.mark.usefixtures("reference_clients"), pytest.mark.timeout(120)]

try:
    import pylibmc as real
except ImportError:  # reported by the reference_clients fixture
    real = None

RETRY = 1  # retry_timeout (s) of the scenarios that set it
# Past libmemcached's retry window for RETRY (it retries between 1 and 2 s
# after a failure), with 0.3 s of room for a loaded machine.
RETRY_PAUSE = RETRY + 1.3

Outcome = Any


def attempt(f: Callable[[], Any]) -> Outcome:
    """The result of f(), or ("raises", exception class name)."""
    try:
        return f()
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return ("raises", type(e).__name__)


class Side:
    """One library's client and the keys it uses (its own keys, so that the
    two clients, sharing the servers, never read each other's items)."""

    def __init__(self, lib: Any, servers: Sequence[str], binary: bool, behaviors: Optional[Dict[str, Any]], tag: str) -> None:
        self.lib = lib
        self.mc = lib.Client(list(servers), binary=binary, behaviors=behaviors)
        candidates = [f"{tag}{i}" for i in range(400)]
        # keys of the last server (the victim) and of the first (a survivor)
        self.key = next(k for k in candidates if self.mc.hash(k) == len(servers) - 1)
        self.other = next(k for k in candidates if self.mc.hash(k) == 0)


def side_by_side(
    steps: Sequence[Tuple[float, Callable[[Side], Outcome]]],
    servers: Sequence[str],
    binary: bool,
    behaviors: Optional[Dict[str, Any]],
    before: Callable[[], None] = lambda: None,
    prepare: Callable[[Side], None] = lambda s: None,
    events: Optional[Dict[int, Callable[[], None]]] = None,
) -> Tuple[List[Outcome], List[Outcome]]:
    """Run each (pause, call) step on pylibmc, then on omcache_pylibmc, after
    the pause (and after events[step], if any, happened); return both
    outcome lists."""
    sides = [Side(real, servers, binary, behaviors, "r"), Side(omcache_pylibmc, servers, binary, behaviors, "o")]
    for s in sides:
        prepare(s)
    before()
    out: Tuple[List[Outcome], List[Outcome]] = ([], [])
    for step, (pause, call) in enumerate(steps):
        if events and step in events:
            events[step]()
        time.sleep(pause)
        for i, s in enumerate(sides):
            out[i].append(attempt(lambda: call(s)))
    for s in sides:
        s.mc.disconnect_all()
    return out


def compare(name: str, theirs: List[Outcome], ours: List[Outcome]) -> None:
    """Equal step by step, except the listed deliberate differences, which
    must be exactly as listed."""
    assert len(theirs) == len(ours)
    listed = DIFFERENCES.get(name, {})
    for i, (t, o) in enumerate(zip(theirs, ours)):
        if i in listed:
            want_t, want_o, reason = listed[i]
            assert (t, o) == (want_t, want_o), f"{name} step {i} ({reason}): pylibmc {t!r}, omcache_pylibmc {o!r}"
        else:
            assert o == t, f"{name} step {i}: omcache_pylibmc gave {o!r}, pylibmc {t!r}"


R = ("raises", "ConnectionError")
DOWN = ("raises", "ServerDown")
DEAD = ("raises", "ServerDead")
SECOND_TRY = "pylibmc's second call to a failed server still tries to connect; omcache fails fast from the first failure on"
RETRY_CLASS = (
    "a retry (after retry_timeout) that fails again is ServerDown in libmemcached "
    "(MEMCACHED_SERVER_TEMPORARILY_DISABLED), ConnectionError here: the call did try the server"
)
EJECTING_CALL = (
    "the failed retry that reaches failure_limit: libmemcached raises ServerDown for it and ServerDead for the next "
    "call (which finds the limit reached); omcache raises ConnectionError for it and then treats the server as dead "
    "(ServerDead, or with remove_failed/auto_eject on ketama the keys move and the set lands on a survivor)"
)
MOVED = "the set of the step before landed on a survivor here, and failed in pylibmc: a hit here, a miss there"
REJOINED = (
    "libmemcached puts an ejected server back into its ring once retry_timeout has passed (dead_timeout 0), "
    "then raises ServerDead for its keys every time; omcache keeps the keys on the survivors and probes "
    "the dead server in the background"
)
TIMEOUT_COUNTS = "a timeout is a failure here (libmemcached counts only connection failures): the stalled server is avoided for retry_timeout"
TOUCH_DOWN = "libmemcached's touch of a server in its retry window reports a failed write (WriteError); omcache raises ServerDown like every other command"

#: scenario name -> {step: (pylibmc's outcome, omcache_pylibmc's outcome, reason)}
DIFFERENCES: Dict[str, Dict[int, Tuple[Outcome, Outcome, str]]] = {}


# -- refused: nothing listens ---------------------------------------------------

REFUSED_CALLS: List[Tuple[str, Callable[[Side], Outcome]]] = [
    ("get", lambda s: s.mc.get("k")),
    ("get again", lambda s: s.mc.get("k")),
    ("set", lambda s: s.mc.set("k", 1)),
    ("add", lambda s: s.mc.add("k", 1)),
    ("delete", lambda s: s.mc.delete("k")),
    ("incr", lambda s: s.mc.incr("k")),
    ("touch", lambda s: s.mc.touch("k", 1)),
    ("get_multi", lambda s: s.mc.get_multi(["a", "b"])),
    ("set_multi", lambda s: s.mc.set_multi({"a": 1})),
    ("delete_multi", lambda s: s.mc.delete_multi(["a"])),
    ("get_stats", lambda s: s.mc.get_stats()),
    ("flush_all", lambda s: s.mc.flush_all()),
]
for _mode in ("text", "binary"):
    DIFFERENCES[f"refused-{_mode}"] = {6: (("raises", "WriteError"), DOWN, TOUCH_DOWN)}


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_refused(binary: bool) -> None:
    """A server where nothing listens: every command, in order."""
    dead = f"127.0.0.1:{free_port()}"
    theirs, ours = side_by_side([(0, call) for _, call in REFUSED_CALLS], [dead], binary, None)
    assert theirs[0] == R and theirs[1] == DOWN  # the scenario does reach the failure handling
    compare(f"refused-{'binary' if binary else 'text'}", theirs, ours)


# -- killed: SIGKILL of one of two real servers, then retry and eject ------------------


def _probe(s: Side) -> Outcome:
    """What a caller sees of the victim's key (get, then set) and of a survivor's key."""
    return (attempt(lambda: s.mc.get(s.key)), attempt(lambda: s.mc.set(s.key, 5)), attempt(lambda: s.mc.get(s.other)))


KILLED_STEPS: List[Tuple[float, Callable[[Side], Outcome]]] = [
    (0, _probe),  # the first failure
    (0, _probe),  # inside the retry window
    (RETRY_PAUSE, _probe),  # the first retry
    (0, _probe),
    (RETRY_PAUSE, _probe),  # the second retry
    (0, _probe),
]

KILLED_BEHAVIORS: Dict[str, Dict[str, Any]] = {
    "retry": {"retry_timeout": RETRY},
    "modula-remove_failed": {"retry_timeout": RETRY, "remove_failed": 1, "failure_limit": 2},
    "ketama-remove_failed": {"retry_timeout": RETRY, "remove_failed": 1, "failure_limit": 2, "ketama": 1},
    "ketama-auto_eject": {"retry_timeout": RETRY, "auto_eject": 1, "failure_limit": 2, "ketama": 1},
}

# What each step gives (get, set, get of a survivor's key), for both modes.
_S = 2  # the survivor's value
for _mode in ("text", "binary"):
    DIFFERENCES[f"killed-retry-{_mode}"] = {
        0: ((R, R, _S), (R, DOWN, _S), SECOND_TRY),
        2: ((DOWN, DOWN, _S), (R, DOWN, _S), RETRY_CLASS),
        4: ((DOWN, DOWN, _S), (R, DOWN, _S), RETRY_CLASS),
    }
    DIFFERENCES[f"killed-modula-remove_failed-{_mode}"] = {
        0: ((R, R, _S), (R, DOWN, _S), SECOND_TRY),
        2: ((DOWN, DEAD, _S), (R, DEAD, _S), EJECTING_CALL),
    }
    for _name in ("ketama-remove_failed", "ketama-auto_eject"):
        DIFFERENCES[f"killed-{_name}-{_mode}"] = {
            0: ((R, R, _S), (R, DOWN, _S), SECOND_TRY),
            2: ((DOWN, DEAD, _S), (R, True, _S), EJECTING_CALL),
            3: ((None, True, _S), (5, True, _S), MOVED),
            4: ((DEAD, DEAD, _S), (5, True, _S), REJOINED),
            5: ((DEAD, DEAD, _S), (5, True, _S), REJOINED),
        }


@pytest.fixture
def two_servers() -> Iterator[List[MemcachedProcess]]:
    procs = [MemcachedProcess().start(), MemcachedProcess().start()]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("name", list(KILLED_BEHAVIORS))
def test_killed(two_servers: List[MemcachedProcess], name: str, binary: bool) -> None:
    """The second of two servers is killed (SIGKILL) after both clients
    stored a key on each; then failures, retries and ejection, step by step."""
    victim = two_servers[1]

    def store(s: Side) -> None:
        assert s.mc.set(s.key, 1) and s.mc.set(s.other, _S)

    def kill() -> None:
        assert victim.proc is not None
        victim.proc.kill()
        victim.proc.wait(5)

    theirs, ours = side_by_side(
        KILLED_STEPS, [p.address for p in two_servers], binary, KILLED_BEHAVIORS[name], before=kill, prepare=store
    )
    compare(f"killed-{name}-{'binary' if binary else 'text'}", theirs, ours)


# -- stalled: SIGSTOP of a real server ----------------------------------------------


def _get(s: Side) -> Outcome:
    return s.mc.get(s.key)


STALLED_STEPS: List[Tuple[float, Callable[[Side], Outcome]]] = [
    (0, _get),  # times out
    (0, _get),  # again at once
    (RETRY_PAUSE, _get),  # resumed (event before this step), after retry_timeout
]
for _mode in ("text", "binary"):
    DIFFERENCES[f"stalled-retry{RETRY}-{_mode}"] = {1: (("raises", "Error"), DOWN, TIMEOUT_COUNTS)}


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("retry_timeout", [0, RETRY], ids=["retry0", f"retry{RETRY}"])
def test_stalled_then_resumed(binary: bool, retry_timeout: int) -> None:
    """A stopped server (SIGSTOP): a get waits _poll_timeout and raises
    pylibmc.Error (error 31, a timeout); once resumed (SIGCONT) the same
    clients read the value again."""
    with MemcachedProcess() as p:
        stopped = False

        def stop() -> None:
            nonlocal stopped
            p.pause()  # returns once the server is stopped
            stopped = True

        def resume() -> None:
            nonlocal stopped
            p.resume()
            stopped = False

        def store(s: Side) -> None:
            assert s.mc.set(s.key, 1)

        behaviors = {"_poll_timeout": 300, "retry_timeout": retry_timeout}
        try:
            theirs, ours = side_by_side(STALLED_STEPS, [p.address], binary, behaviors, before=stop, prepare=store, events={2: resume})
        finally:
            if stopped:
                p.resume()
        assert theirs[0] == ("raises", "Error") and theirs[2] == 1  # libmemcached's MEMCACHED_TIMEOUT, then the value
        compare(f"stalled-retry{retry_timeout}-{'binary' if binary else 'text'}", theirs, ours)


def test_every_listed_difference_belongs_to_a_scenario() -> None:
    scenarios = {f"refused-{m}" for m in ("text", "binary")} | {f"stalled-retry{r}-{m}" for r in (0, RETRY) for m in ("text", "binary")}
    scenarios |= {f"killed-{n}-{m}" for n in KILLED_BEHAVIORS for m in ("text", "binary")}
    assert set(DIFFERENCES) <= scenarios
