"""Failure detection and failover (docs/failover.md), against real memcached
processes (killed with SIGKILL, stopped with SIGSTOP, restarted) and the
embedded server's fault injection.

Every call is timed: none may take longer than connect_timeout + io_timeout
(plus SLACK for a loaded machine), whatever the servers do.
"""

from __future__ import annotations

import gc
import time
import uuid
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type

import pytest

import omcache
from omcache.testing import EmbeddedServer, MemcachedProcess, free_port

CONNECT = 0.3
IO = 1.0
RECONNECT = 0.5
# Real time is the point of these tests (a call is bounded by its timeouts
# whatever the servers do), so the bounds are wall-clock ones. SLACK is the
# room for a loaded CI machine (two cores shared with other jobs, where a
# thread can wait a few hundred ms for the CPU): generous, as a call that
# waits on a hung server never returns at all and one that waits twice
# takes a whole IO more.
SLACK = 1.0
BOUND = CONNECT + IO + SLACK
# A call that touches no socket: half of IO, so it still tells a fail-fast
# answer from one that waited for the io_timeout, with 0.5 s of room either
# way (under two busy loops such a call once took 0.26 s).
FAST = IO / 2


def timed(f: Callable[[], object]) -> Tuple[object, Optional[Exception], float]:
    """Run f; return (result, exception or None, seconds)."""
    t0 = time.monotonic()
    try:
        r, e = f(), None
    except omcache.Error as ex:
        # Without its traceback the error holds no frame, so no reference
        # cycle keeps the client alive until the next garbage collection.
        r, e = None, ex.with_traceback(None)
    return r, e, time.monotonic() - t0


@pytest.fixture(autouse=True)
def _collect_clients() -> Iterator[None]:
    """Free this test's clients now rather than during a later test (some
    tests count the engine's live clients)."""
    yield
    gc.collect()


def direct(addr: str) -> omcache.Client:
    """A client for one server, to see what that server holds."""
    return omcache.Client([addr], connect_timeout=1.0, io_timeout=1.0, failover=False, failure_limit=0)


def kill(p: MemcachedProcess) -> None:
    assert p.proc is not None
    p.proc.kill()
    p.proc.wait(5)


def keys_for(prefix: str, n: int) -> List[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{i}" for i in range(n)]


def wait_until(cond: Callable[[], bool], within: float, what: str) -> float:
    """Poll cond every 20 ms (each poll is a client call, which is what starts
    due probes); return the time it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > within:
            pytest.fail(f"{what}: not within {within:.2f}s")
        time.sleep(0.02)
    return time.monotonic() - t0


def cluster(factory: Callable[..., MemcachedProcess], **options: object) -> Tuple[List[MemcachedProcess], omcache.Client]:
    procs = [factory() for _ in range(3)]
    kw: Dict[str, object] = dict(connect_timeout=CONNECT, io_timeout=IO, reconnect_timeout=RECONNECT)
    kw.update(options)
    return procs, omcache.Client([p.address for p in procs], **kw)  # type: ignore[arg-type]


# -- real memcached: SIGKILL, SIGSTOP, restart ---------------------------------


def test_killed_server_fails_its_keys_then_they_walk_to_the_next_live_point_and_return(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    procs, mc = cluster(memcached_factory, failure_limit=2)
    addrs = [p.address for p in procs]
    keys = keys_for("kill", 200)
    home = {k: mc.server_for_key(k) for k in keys}
    victim = 1
    on_victim = {k for k in keys if home[k] == victim}
    assert on_victim and len(on_victim) < len(keys)
    assert mc.set_multi({k: b"before" for k in keys}) == []

    kill(procs[victim])
    failing_rounds = 0
    dead_at = 0.0
    for rnd in range(4):
        errors: Dict[str, Exception] = {}
        # The round in which the victim fails the second time marks it dead:
        # its start is a lower bound of that moment, whatever the load.
        started = time.monotonic()
        failed, err, dt = timed(lambda: mc.set_multi({k: b"r%d" % rnd for k in keys}, errors=errors))
        assert err is None and dt < BOUND, (err, dt)
        if failed:
            failing_rounds += 1
            dead_at = started
            # Only the victim's keys fail, each with its ConnectionError.
            assert set(failed) == on_victim == set(errors)  # type: ignore[arg-type]
            assert all(isinstance(e, omcache.ConnectionError) for e in errors.values())
    # failure_limit consecutive failures, then the keys moved: not one more.
    assert failing_rounds == 2

    # Where they went: the next live point of the ketama ring, which is where
    # a client over the two survivors places them (a server's points do not
    # depend on the other servers); keys of live servers did not move.
    survivors = [addrs[0], addrs[2]]
    walk = omcache.Client(survivors)
    held = {a: direct(a) for a in survivors}
    for k in keys:
        expected = addrs[home[k]] if k not in on_victim else survivors[walk.server_for_key(k)]
        assert held[expected].get(k) == b"r3", k
        other = survivors[1 - survivors.index(expected)]
        if k in on_victim:
            assert held[other].get(k) is None
    assert mc.get_multi(keys) == {k: b"r3" for k in keys}

    # Restart on the same port: once the probe (due RECONNECT after death)
    # succeeds, the victim's keys go home again.
    procs[victim] = memcached_factory(port=procs[victim].port)
    ready = time.monotonic()
    k0 = sorted(on_victim)[0]
    back = direct(addrs[victim])

    def home_again() -> bool:
        _, err, dt = timed(lambda: mc.set(k0, b"back"))
        assert err is None and dt < BOUND, (err, dt)
        return back.get(k0) == b"back"

    wait_until(home_again, RECONNECT + BOUND + 2.0, "keys back on the restarted server")
    returned = time.monotonic()
    assert returned - dead_at >= RECONNECT, "retried before reconnect_timeout"
    assert returned - max(ready, dead_at + RECONNECT) < RECONNECT + BOUND
    # The restarted server is empty: the victim's other keys now miss; the
    # rest kept their values.
    got = mc.get_multi(keys)
    assert {k for k in on_victim if k in got} == {k0}
    assert all(got[k] == b"r3" for k in keys if k not in on_victim)


def test_stopped_server_times_out_within_io_timeout_then_fails_over_then_returns_with_its_data(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    procs, mc = cluster(memcached_factory, failure_limit=2)
    addrs = [p.address for p in procs]
    keys = keys_for("stop", 120)
    victim = 2
    on_victim = [k for k in keys if mc.server_for_key(k) == victim]
    others = [k for k in keys if mc.server_for_key(k) != victim]
    assert mc.set_multi({k: b"before" for k in keys}) == []

    procs[victim].pause()
    try:
        for k in on_victim[:2]:
            _, err, dt = timed(lambda: mc.get(k))
            assert isinstance(err, omcache.TimeoutError), err
            assert IO - 0.02 <= dt < IO + SLACK, dt
            _, err, dt = timed(lambda: mc.get(others[0]))
            assert err is None and dt < FAST, (err, dt)
        # Dead after two timeouts: its keys now miss on their failover server
        # at once, and writes land there.
        moved = on_victim[2]
        r, err, dt = timed(lambda: mc.get(moved))
        assert r is None and err is None and dt < FAST, (r, err, dt)
        assert mc.set(moved, b"moved")
        survivors = [addrs[0], addrs[1]]
        assert direct(survivors[omcache.Client(survivors).server_for_key(moved)]).get(moved) == b"moved"
        # Probes of the stopped server connect (the kernel accepts) and time
        # out in the background: calls never wait for them.
        t_end = time.monotonic() + RECONNECT + IO + 0.3
        while time.monotonic() < t_end:
            r, err, dt = timed(lambda: mc.get(moved))
            assert r == b"moved" and dt < FAST, (r, err, dt)
            time.sleep(0.02)
    finally:
        procs[victim].resume()
    resumed = time.monotonic()
    # Back home, where its data survived the stop.
    took = wait_until(lambda: mc.get(on_victim[0]) == b"before", RECONNECT + BOUND + 2.0, "keys back after SIGCONT")
    assert took < RECONNECT + BOUND
    assert mc.get(moved) == b"before"  # home again: the failover copy is not read
    assert time.monotonic() - resumed < RECONNECT + BOUND + 0.5


def test_without_failover_a_dead_servers_keys_fail_fast_with_a_clear_error_until_it_returns(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    procs, mc = cluster(memcached_factory, failover=False, failure_limit=1)
    keys = keys_for("nofail", 60)
    victim = 0
    k = next(k for k in keys if mc.server_for_key(k) == victim)
    other = next(k for k in keys if mc.server_for_key(k) != victim)
    assert mc.set(k, b"v") and mc.set(other, b"w")
    kill(procs[victim])
    _, err, dt = timed(lambda: mc.get(k))
    assert isinstance(err, omcache.ConnectionError) and "marked dead" not in str(err) and dt < BOUND
    for call in (lambda: mc.get(k), lambda: mc.set(k, b"x"), lambda: mc.delete(k), lambda: mc.incr(k)):
        _, err, dt = timed(call)
        assert isinstance(err, omcache.ConnectionError), err
        assert "marked dead" in str(err) and procs[victim].address in str(err), str(err)
        assert dt < FAST, dt
    assert mc.get(other) == b"w"
    errors: Dict[str, Exception] = {}
    assert mc.get_multi([k, other], errors=errors) == {other: b"w"}
    assert list(errors) == [k] and "marked dead" in str(errors[k])

    procs[victim] = memcached_factory(port=procs[victim].port)
    wait_until(lambda: timed(lambda: mc.set(k, b"again"))[1] is None, RECONNECT + BOUND + 2.0, "dead server retried")
    assert mc.get(k) == b"again"


def test_retry_timeout_makes_a_failing_server_fail_fast_between_attempts(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    # libmemcached's retry_timeout (pylibmc's ServerDown): after each failure
    # below failure_limit, calls fail without trying for retry_timeout.
    retry = 0.4
    procs, mc = cluster(memcached_factory, failover=False, failure_limit=3, retry_timeout=retry)
    keys = keys_for("retry", 60)
    k = next(k for k in keys if mc.server_for_key(k) == 1)
    assert mc.set(k, b"v")
    kill(procs[1])
    outcomes: List[Tuple[str, float]] = []
    t0 = time.monotonic()
    # Until the third failure made the server dead (a deadline, not a fixed
    # number of calls: a loaded machine makes fewer).
    while not outcomes or outcomes[-1][0] != "dead":
        assert time.monotonic() - t0 < 3 * retry + 5 * SLACK, outcomes
        start = time.monotonic()
        _, err, dt = timed(lambda: mc.get(k))
        assert isinstance(err, omcache.ConnectionError) and dt < BOUND
        msg = str(err)
        outcomes.append(("down" if "down after a failure" in msg else "dead" if "marked dead" in msg else "tried", start))
        if outcomes[-1][0] != "tried":
            assert dt < FAST
        time.sleep(0.05)
    # tried, down..., tried, down..., tried (the third failure), dead
    names = [o for o, _ in outcomes]
    collapsed = [o for i, o in enumerate(names) if i == 0 or o != names[i - 1]]
    assert collapsed == ["tried", "down", "tried", "down", "tried", "dead"], names
    # Each retry waited retry_timeout (a lower bound: exact under any load)
    # and came at the first call after it (the calls are 50 ms apart, plus
    # SLACK for a loaded machine).
    tries = [t for o, t in outcomes if o == "tried"]
    for a, b in zip(tries, tries[1:]):
        assert retry <= b - a < retry + 0.05 + SLACK, tries


def test_dead_timeout_bounds_how_long_a_server_may_stay_unreachable_before_its_keys_move(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    live = memcached_factory()
    dead_timeout = 0.6
    mc = omcache.Client(
        [live.address, f"127.0.0.1:{free_port()}"],
        connect_timeout=CONNECT, io_timeout=IO, failure_limit=0, dead_timeout=dead_timeout, reconnect_timeout=30,
    )
    k = next(k for k in keys_for("deadt", 60) if mc.server_for_key(k) == 1)
    t_first = None
    while True:
        # the start of the first failing call: a lower bound of the first
        # failure, from which dead_timeout counts
        started = time.monotonic()
        r, err, dt = timed(lambda: mc.get(k))
        assert dt < BOUND
        if err is None:
            break
        assert isinstance(err, omcache.ConnectionError) and "marked dead" not in str(err)
        t_first = t_first or started
        assert time.monotonic() - t_first < dead_timeout + SLACK + 0.2, "keys never moved"
        time.sleep(0.05)
    assert t_first is not None
    # at dead_timeout (exact: a lower bound), and soon after (the calls are
    # 50 ms apart; SLACK for a loaded machine)
    assert dead_timeout <= time.monotonic() - t_first < dead_timeout + SLACK
    assert r is None and mc.set(k, b"moved") and direct(live.address).get(k) == b"moved"


def test_a_write_that_was_not_acknowledged_is_reported_failed(
    memcached_factory: Callable[..., MemcachedProcess],
) -> None:
    procs, mc = cluster(memcached_factory, failure_limit=5)
    keys = keys_for("ack", 60)
    on_1 = [k for k in keys if mc.server_for_key(k) == 1]
    procs[1].pause()
    try:
        with pytest.raises(omcache.TimeoutError):
            mc.set(on_1[0], b"v")
        errors: Dict[str, Exception] = {}
        failed = mc.set_multi({k: b"v" for k in keys}, errors=errors)
        assert set(failed) == set(on_1) == set(errors)
        assert all(isinstance(e, omcache.TimeoutError) for e in errors.values())
    finally:
        procs[1].resume()


# -- the embedded server's fault injection --------------------------------------

# (fault, io_timeout, error). The io_timeout also bounds the good server's
# answers in the same call: 0.5 s, as 0.1-0.2 s was too little for them on a
# loaded machine (two busy loops made the good server's keys time out too,
# 1 run in 10); the delay is 1 s, so the delayed answers cannot beat it.
FAULT_IO = 0.5
FAULTS: Sequence[Tuple[str, float, Type[omcache.Error]]] = [
    ("stall", FAULT_IO, omcache.TimeoutError),
    ("blackhole", FAULT_IO, omcache.TimeoutError),
    ("delay=1s", FAULT_IO, omcache.TimeoutError),
    ("close-mid-response", FAULT_IO, omcache.ConnectionError),
    ("corrupt", FAULT_IO, omcache.ProtocolError),
    ("refuse", FAULT_IO, omcache.ConnectionError),
    ("hangup", FAULT_IO, omcache.ConnectionError),
]


@pytest.fixture
def two_embedded() -> Iterator[Tuple[EmbeddedServer, EmbeddedServer]]:
    with EmbeddedServer() as a, EmbeddedServer() as b:
        yield a, b


@pytest.mark.parametrize("fault,io,exc", FAULTS, ids=[f[0] for f in FAULTS])
def test_embedded_fault_fails_bounded_then_keys_fail_over_then_return(
    two_embedded: Tuple[EmbeddedServer, EmbeddedServer], fault: str, io: float, exc: Type[omcache.Error]
) -> None:
    bad, good = two_embedded
    bad.set_fault(fault)
    mc = omcache.Client([bad.address, good.address], connect_timeout=0.2, io_timeout=io, failure_limit=1, reconnect_timeout=0.3)
    bound = 0.2 + io + SLACK
    keys = keys_for("fault", 40)
    on_bad = [k for k in keys if mc.server_for_key(k) == 0]
    on_good = [k for k in keys if mc.server_for_key(k) == 1]
    assert on_bad and on_good
    _, err, dt = timed(lambda: mc.get(on_bad[0]))
    assert isinstance(err, exc), repr(err)
    assert dt < bound, dt
    # Dead after one failure: everything now goes to the good server, fast.
    errors: Dict[str, Exception] = {}
    failed, err, dt = timed(lambda: mc.set_multi({k: b"v" for k in keys}, errors=errors))
    assert err is None and failed == [] and errors == {} and dt < bound
    assert good.item_count() == len(keys)
    got, err, dt = timed(lambda: mc.get_multi(keys))
    assert got == {k: b"v" for k in keys} and dt < bound
    # Cleared: the probe finds it answering and its keys return.
    bad.clear_faults()
    wait_until(lambda: mc.get(on_bad[0]) is None, 0.3 + bound + 2.0, f"keys back after clearing {fault}")
    assert mc.get(on_good[0]) == b"v"


@pytest.mark.parametrize("fault,io,exc", FAULTS, ids=[f[0] for f in FAULTS])
def test_embedded_fault_gives_partial_multi_results_with_per_key_errors(
    two_embedded: Tuple[EmbeddedServer, EmbeddedServer], fault: str, io: float, exc: Type[omcache.Error]
) -> None:
    bad, good = two_embedded
    mc = omcache.Client([bad.address, good.address], connect_timeout=0.2, io_timeout=io, failure_limit=100)
    keys = keys_for("partial", 40)
    on_bad = [k for k in keys if mc.server_for_key(k) == 0]
    on_good = [k for k in keys if mc.server_for_key(k) == 1]
    bad.set_fault(fault)
    bound = 0.2 + io + SLACK
    errors: Dict[str, Exception] = {}
    failed, err, dt = timed(lambda: mc.set_multi({k: b"v" for k in keys}, errors=errors))
    assert err is None and dt < bound, (err, dt)
    # Not acknowledged, so failed (close-mid-response may even have stored
    # them: still reported).
    assert set(failed) == set(on_bad) == set(errors)  # type: ignore[arg-type]
    assert all(isinstance(e, exc) for e in errors.values()), errors
    errors = {}
    got, err, dt = timed(lambda: mc.get_multi(keys, errors=errors))
    assert err is None and dt < bound, (err, dt)
    # The good server's hits all come back; the bad server's keys each get
    # their error, except hits that arrived before a close-mid-response,
    # which are real answers.
    assert all(got.get(k) == b"v" for k in on_good)  # type: ignore[union-attr]
    assert set(got) | set(errors) == set(keys) and not set(got) & set(errors)  # type: ignore[arg-type]
    assert errors and set(errors) <= set(on_bad) and all(isinstance(e, exc) for e in errors.values())
    if fault != "close-mid-response":
        assert set(errors) == set(on_bad)


def test_slow_responses_within_io_timeout_succeed(two_embedded: Tuple[EmbeddedServer, EmbeddedServer]) -> None:
    slow, _ = two_embedded
    # 0.8 s of room between the 200 ms delay and the io_timeout, for a
    # loaded machine
    mc = omcache.Client([slow.address], io_timeout=1.0, failure_limit=1)
    assert mc.set("k", b"v")
    slow.set_fault("delay=200ms")
    r, err, dt = timed(lambda: mc.get("k"))
    assert r == b"v" and err is None and 0.19 <= dt < 1.0 + SLACK, (r, err, dt)
    got, err, dt = timed(lambda: mc.get_multi(["k", "k2"]))
    assert got == {"k": b"v"} and 0.19 <= dt < 1.0 + SLACK


def test_dead_and_down_servers_raise_their_own_connection_error_subclasses() -> None:
    from omcache.testing import free_port

    dead = f"127.0.0.1:{free_port()}"
    c = omcache.Client([dead], failover=False, failure_limit=1, reconnect_timeout=60, connect_timeout=0.3)
    with pytest.raises(omcache.ConnectionError) as first:
        c.get("k")
    assert not isinstance(first.value, (omcache.ServerDownError, omcache.ServerDeadError))
    with pytest.raises(omcache.ServerDeadError):
        c.get("k")
    d = omcache.Client([dead], failover=False, failure_limit=3, retry_timeout=60, connect_timeout=0.3)
    with pytest.raises(omcache.ConnectionError):
        d.get("k")
    with pytest.raises(omcache.ServerDownError) as down:
        d.get("k")
    assert isinstance(down.value, omcache.ConnectionError)
