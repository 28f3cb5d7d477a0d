"""End-to-end key placement against the real pylibmc and python-memcached.

For every configuration below, and each of about 1,260 keys (ASCII, UTF-8 in
many scripts, 250-byte keys, raw high bytes):

1. the real client (pylibmc 1.6.3 on Debian's libmemcached 1.1.4, or
   python-memcached 1.62) stores the key;
2. every server is asked over a raw socket which keys it holds: that is the
   real placement;
3. ``omcache.Client(...).server_for_key(key)`` must name that server, and
   pylibmc's own ``Client.hash(key)`` must agree with both;
4. omcache then stores the keys itself (``set`` and ``set_multi``), they must
   land on the same servers, and the real client must read every value back:
   the two clients share one cache.

Each pylibmc configuration is run twice: with the pylibmc behaviors dict
handed to ``omcache.Client(..., distribution="modula", behaviors=...)``
exactly as pylibmc gets it (modula is where a pylibmc client starts), and
with omcache's own keyword arguments spelling the same placement.

The servers (25 on free ports of 127.0.0.1 and ::1, 4 on port 11211 of other
127.x.y.z addresses, 3 on unix sockets) are started once for the module and
flushed between configurations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

import omcache
from omcache.testing import find_memcached

from placement_util import Farm, Server, client_key, flush, make_keys, mismatches, observe

from references import unavailable

try:
    import memcache
    import pylibmc
except ImportError:  # reported by the session's reference_clients fixture
    pass

# The reference versions (pylibmc 1.6.3 on libmemcached 1.1.4,
# python-memcached 1.62) are checked once per session by conftest's
# reference_clients fixture, which every test here uses through farm.
pytestmark = pytest.mark.timeout(60)

KEYS = make_keys()


@pytest.fixture(scope="module")
def farm(reference_clients: object) -> Iterator[Farm]:
    if find_memcached() is None:
        unavailable("memcached is not installed (apt-get install memcached)")
    f = Farm()
    try:
        f.start_tcp(25)
        f.start_port_11211(4)
        f.start_unix(3)
        yield f
    finally:
        f.stop()


# ---------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Spec:
    """A server spec as written, with {host}, {port}, {path} taken from the farm server it reaches."""

    template: str
    server: str

    def render(self, farm: Farm) -> str:
        s = farm[self.server]
        return self.template.format(host=s.host, port=s.port, path=s.unix or "")

    def label(self, farm: Farm) -> str:
        """How libmemcached names the instance in get_stats(): host as written, then the port."""
        s = farm[self.server]
        if s.unix:
            return f"{s.unix}:0"
        host = self.render(farm).split(":")[0]
        return f"{host}:{s.port}"


def ip(*names: str, weights: Sequence[int] = ()) -> Tuple[Spec, ...]:
    ws = list(weights) or [0] * len(names)
    return tuple(Spec("{host}:{port}" + (f":{w}" if w else ""), n) for n, w in zip(names, ws))


def localhost(*names: str) -> Tuple[Spec, ...]:
    return tuple(Spec("localhost:{port}", n) for n in names)


def implicit(*names: str) -> Tuple[Spec, ...]:
    return tuple(Spec("{host}", n) for n in names)


def explicit_11211(*names: str) -> Tuple[Spec, ...]:
    return tuple(Spec("{host}:11211", n) for n in names)


def unix(*names: str) -> Tuple[Spec, ...]:
    return tuple(Spec("{path}", n) for n in names)


@dataclass(frozen=True)
class Case:
    """A pylibmc configuration and omcache's keyword arguments for the same placement."""

    name: str
    specs: Tuple[Spec, ...]
    behaviors: Dict[str, Any]
    keywords: Dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class PMCase:
    """A python-memcached configuration: specs, and bucket weights (None: all 1)."""

    name: str
    specs: Tuple[Spec, ...]
    weights: Optional[Tuple[int, ...]] = None


HASHERS = ["default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur", "jenkins"]
FIVE = ip("S0", "S1", "S2", "S3", "S4")
THREE = ip("S0", "S1", "S2")
FOUR = ip("S0", "S1", "S2", "S3")
TWENTY_FIVE = ip(*(f"S{i}" for i in range(25)))
# Out of (host, port) order, and mixing names, addresses and an implicit port.
UNSORTED = localhost("S2") + ip("S0") + ip("S3") + localhost("S1") + implicit("P0")


def _cases() -> List[Case]:
    cases: List[Case] = []
    for h in HASHERS:  # five servers: a modulus of 4 would only look at the low bits
        cases.append(Case(f"modula-{h}", FIVE, {"hash": h}, {"distribution": "modula", "hash": h}))
    cases += [
        Case("modula-no-behaviors", FIVE, {}, {"distribution": "modula"}),
        Case("ketama-1", ip("S0"), {"ketama": True}, {"distribution": "consistent"}),
        Case("ketama-3", THREE, {"ketama": True}, {"distribution": "consistent"}),
        Case("ketama-5", FIVE, {"ketama": True}, {"distribution": "consistent"}),
        Case("distribution-consistent-3", THREE, {"distribution": "consistent"}, {"distribution": "consistent"}),
        Case("distribution-consistent-ketama-3", THREE, {"distribution": "consistent ketama"},
             {"distribution": "consistent ketama"}),
        Case("distribution-consistent-ketama-spy-3", THREE, {"distribution": "consistent ketama spy"},
             {"distribution": "consistent ketama spy"}),
    ]
    for h in HASHERS[1:]:
        cases.append(Case(f"ketama-{h}", FOUR, {"hash": h, "ketama": True}, {"distribution": "consistent", "hash": h},
                          note="the key hash also names the continuum points"))
    cases += [
        Case("ketama_weighted-3", THREE, {"ketama_weighted": True}, {"distribution": "ketama_weighted"}),
        Case("ketama_weighted-5", FIVE, {"ketama_weighted": True}, {"distribution": "ketama_weighted"}),
        Case("ketama_weighted-25", TWENTY_FIVE, {"ketama_weighted": True}, {"distribution": "ketama_weighted"},
             note="float quirk: 25 equal servers get 156 points each, not 160"),
        Case("ketama_weighted-with-hash-crc", THREE, {"ketama_weighted": True, "hash": "crc"},
             {"distribution": "ketama_weighted"},
             note="pylibmc applies hash before ketama_weighted, which forces md5, whatever the dict order"),
        Case("ketama_weighted-then-distribution-consistent", THREE,
             {"distribution": "consistent", "ketama_weighted": True}, {"distribution": "consistent", "hash": "md5"},
             note="distribution is applied last: weighting off, the md5 key hash stays"),
        Case("ketama_weighted-false", THREE, {"ketama_weighted": False}, {"distribution": "consistent"},
             note="libmemcached selects ketama when ketama_weighted is set to false"),
        Case("consistent-weighted-3", THREE, {"distribution": "consistent weighted"},
             {"distribution": "ketama_pre1010"}),
        Case("consistent-weighted-25", TWENTY_FIVE, {"distribution": "consistent weighted"},
             {"distribution": "consistent weighted"}),
        Case("spec-weights-ketama-1-2-3", ip("S0", "S1", "S2", weights=(1, 2, 3)), {"ketama": True},
             {"distribution": "consistent"},
             note="a weight above 1 in the specs turns weighting on; the key hash stays one-at-a-time"),
        Case("spec-weights-ketama-1-9", ip("S0", "S1", weights=(1, 9)), {"ketama": True},
             {"distribution": "consistent"}),
        Case("spec-weights-ketama-1-3-7-7-7", ip("S0", "S1", "S2", "S3", "S4", weights=(1, 3, 7, 7, 7)),
             {"ketama": True}, {"distribution": "consistent"}),
        Case("spec-weights-ketama_weighted", ip("S0", "S1", "S2", "S3", weights=(2, 1, 5, 1)),
             {"ketama_weighted": True}, {"distribution": "ketama_weighted"}),
        Case("spec-weights-modula-ignored", ip("S0", "S1", "S2", weights=(1, 5, 2)), {},
             {"distribution": "modula"}),
        Case("ketama-localhost", localhost("S0", "S1", "S2"), {"ketama": True}, {"distribution": "consistent"},
             note="host names are hashed as written"),
        Case("ketama-127.0.0.1", THREE, {"ketama": True}, {"distribution": "consistent"}),
        Case("ketama-localhost-and-addresses", localhost("S0") + ip("S1", "S2"), {"ketama": True},
             {"distribution": "consistent"}),
        Case("ketama-implicit-11211", implicit("P0", "P1", "P2", "P3"), {"ketama": True},
             {"distribution": "consistent"}),
        Case("ketama-explicit-11211", explicit_11211("P0", "P1", "P2", "P3"), {"ketama": True},
             {"distribution": "consistent"}),
        Case("ketama-implicit-and-other-ports", implicit("P0", "P1") + ip("S0"), {"ketama": True},
             {"distribution": "consistent"}),
        Case("ketama_weighted-implicit-11211", implicit("P0", "P1", "P2", "P3"), {"ketama_weighted": True},
             {"distribution": "ketama_weighted"}),
        Case("modula-implicit-11211", implicit("P0", "P1", "P2"), {}, {"distribution": "modula"}),
        Case("modula-sort_hosts", UNSORTED, {"_sort_hosts": True}, {"distribution": "modula", "sort_hosts": True},
             note="libmemcached sorts the servers by (host, port) before modula"),
        Case("modula-unsorted", UNSORTED, {}, {"distribution": "modula"}),
        Case("ketama-sort_hosts", UNSORTED, {"_sort_hosts": True, "ketama": True},
             {"distribution": "consistent", "sort_hosts": True}),
        Case("crc-modula-sort_hosts", UNSORTED, {"_sort_hosts": True, "hash": "crc"},
             {"distribution": "modula", "hash": "crc", "sort_hosts": True}),
        Case("ketama-unix", unix("U0", "U1", "U2"), {"ketama": True}, {"distribution": "consistent"},
             note="unix sockets have port 0: their points are named path:0-N"),
        Case("fnv1a_32-modula-unix-sort_hosts", unix("U2", "U0", "U1"), {"hash": "fnv1a_32", "_sort_hosts": True},
             {"distribution": "modula", "hash": "fnv1a_32", "sort_hosts": True}),
    ]
    return cases


CASES = _cases()
PM_CASES = [
    PMCase("python-memcached-4", ip("S0", "S1", "S2", "S3")),
    PMCase("python-memcached-weights-1-3-2-5", ip("S0", "S1", "S2", "S3"), (1, 3, 2, 5)),
    PMCase("python-memcached-weights-implicit-port", implicit("P0", "P1", "P2"), (4, 1, 2)),
    PMCase("python-memcached-localhost-weights", localhost("S4", "S5") + ip("S6"), (2, 1, 3)),
]
FORMS = ["pylibmc-behaviors", "keywords"]


# ---------------------------------------------------------------- the checks


def omcache_client(case: Case, specs: List[str], form: str) -> omcache.Client:
    if form == "pylibmc-behaviors":
        return omcache.Client(specs, distribution="modula", behaviors=dict(case.behaviors))
    return omcache.Client(specs, **case.keywords)


def libmemcached_positions(mc: "pylibmc.Client", labels: List[str]) -> List[int]:
    """Map libmemcached's instance positions (what Client.hash returns) to spec indices.

    libmemcached keeps servers in the order they were added unless
    _sort_hosts sorted them; get_stats() lists the instances in its order.
    """
    order = []
    for i, (name, _stats) in enumerate(mc.get_stats()):
        label = name.decode() if isinstance(name, bytes) else name
        addr, _, pos = label.rpartition(" ")
        assert pos == f"({i})", label
        order.append(labels.index(addr))
    assert sorted(order) == list(range(len(labels))), (order, labels)
    return order


def store_through_omcache(om: omcache.Client, keys: Sequence[bytes]) -> Dict[bytes, bytes]:
    """Store every key through omcache (even positions with set, odd with set_multi); return key -> value."""
    values = {k: b"omcache-%d" % i for i, k in enumerate(keys)}
    for k in keys[0::2]:
        assert om.set(client_key(k), values[k]), k
    failed = om.set_multi({client_key(k): values[k] for k in keys[1::2]})
    assert failed == []
    return values


def check_omcache_writes(servers: List[Server], keys: Sequence[bytes], real: List[int],
                         values: Dict[bytes, bytes], read_back: Dict[Any, Any]) -> None:
    where = observe(servers, keys)
    written = [where.get(k, -1) for k in keys]
    assert written == real, "omcache stored keys elsewhere: " + mismatches(keys, real, written)
    got = {(k.encode() if isinstance(k, str) else k): v for k, v in read_back.items()}
    missing = [k for k in keys if got.get(k) != values[k]]
    assert not missing, f"the real client did not read back {len(missing)} keys omcache stored, e.g. {missing[:3]!r}"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pylibmc_placement(farm: Farm, case: Case, form: str) -> None:
    specs = [s.render(farm) for s in case.specs]
    servers = [farm[s.server] for s in case.specs]
    ckeys = [client_key(k) for k in KEYS]

    flush(servers)
    mc = pylibmc.Client(specs, behaviors=dict(case.behaviors))
    try:
        assert mc.set_multi({ck: b"pylibmc" for ck in ckeys}) == []
        where = observe(servers, KEYS)
        assert len(where) == len(KEYS), f"{len(KEYS) - len(where)} keys stored by pylibmc are on no server"
        real = [where[k] for k in KEYS]
        assert set(real) == set(range(len(specs))), "some server got no key: the check would be weak"

        positions = libmemcached_positions(mc, [s.label(farm) for s in case.specs])
        hashed = [positions[mc.hash(ck)] for ck in ckeys]
        assert hashed == real, "pylibmc's own hash() disagrees with the servers: " + mismatches(KEYS, real, hashed)

        with omcache_client(case, specs, form) as om:
            predicted = [om.server_for_key(ck) for ck in ckeys]
            # With hashed == real above, this also says omcache agrees with pylibmc's hash().
            assert predicted == real, "omcache.server_for_key vs real pylibmc placement: " + mismatches(
                KEYS, real, predicted
            )

            flush(servers)
            values = store_through_omcache(om, KEYS)
        check_omcache_writes(servers, KEYS, real, values, mc.get_multi(ckeys))
    finally:
        mc.disconnect_all()


@pytest.mark.parametrize("case", PM_CASES, ids=[c.name for c in PM_CASES])
def test_python_memcached_placement(farm: Farm, case: PMCase) -> None:
    specs = [s.render(farm) for s in case.specs]
    servers = [farm[s.server] for s in case.specs]
    ckeys = [client_key(k) for k in KEYS]
    hosts: List[Any] = specs if case.weights is None else list(zip(specs, case.weights))

    flush(servers)
    mc = memcache.Client(hosts, socket_timeout=3, dead_retry=3600)
    try:
        for ck in ckeys:
            assert mc.set(ck, b"python-memcached"), ck
        where = observe(servers, KEYS)
        assert len(where) == len(KEYS), f"{len(KEYS) - len(where)} keys stored by python-memcached are on no server"
        real = [where[k] for k in KEYS]
        assert set(real) == set(range(len(specs)))

        weights = None if case.weights is None else list(case.weights)
        with omcache.Client(specs, distribution="python-memcached", weights=weights) as om:
            predicted = [om.server_for_key(ck) for ck in ckeys]
            assert predicted == real, "omcache vs real python-memcached placement: " + mismatches(
                KEYS, real, predicted
            )

            flush(servers)
            values = store_through_omcache(om, KEYS)
        read_back: Dict[Any, Any] = {}
        for i in range(0, len(ckeys), 200):
            read_back.update(mc.get_multi(ckeys[i : i + 200]))
        check_omcache_writes(servers, KEYS, real, values, read_back)
    finally:
        mc.disconnect_all()


def _real_pylibmc_placement(farm: Farm, specs_t: Tuple[Spec, ...], behaviors: Dict[str, Any]) -> List[int]:
    specs = [s.render(farm) for s in specs_t]
    servers = [farm[s.server] for s in specs_t]
    flush(servers)
    mc = pylibmc.Client(specs, behaviors=dict(behaviors))
    try:
        assert mc.set_multi({client_key(k): b"v" for k in KEYS}) == []
    finally:
        mc.disconnect_all()
    where = observe(servers, KEYS)
    return [where[k] for k in KEYS]


def test_host_name_and_its_address_place_keys_differently(farm: Farm) -> None:
    """libmemcached hashes the host as written: "localhost:P" and "127.0.0.1:P" are different points."""
    by_name = _real_pylibmc_placement(farm, localhost("S0", "S1", "S2"), {"ketama": True})
    by_addr = _real_pylibmc_placement(farm, THREE, {"ketama": True})
    moved = sum(a != b for a, b in zip(by_name, by_addr))
    assert moved > len(KEYS) // 3, f"only {moved} keys moved: the host-name check would be weak"
    specs_name = [s.render(farm) for s in localhost("S0", "S1", "S2")]
    specs_addr = [s.render(farm) for s in THREE]
    with omcache.Client(specs_name) as a, omcache.Client(specs_addr) as b:
        assert [a.server_for_key(client_key(k)) for k in KEYS] == by_name
        assert [b.server_for_key(client_key(k)) for k in KEYS] == by_addr


def test_implicit_and_explicit_port_11211_place_keys_identically(farm: Farm) -> None:
    implicit_specs = implicit("P0", "P1", "P2", "P3")
    a = _real_pylibmc_placement(farm, implicit_specs, {"ketama": True})
    b = _real_pylibmc_placement(farm, explicit_11211("P0", "P1", "P2", "P3"), {"ketama": True})
    assert a == b
    with omcache.Client([s.render(farm) for s in implicit_specs]) as om:
        assert [om.server_for_key(client_key(k)) for k in KEYS] == a


def test_hsieh_is_refused_like_debians_libmemcached(farm: Farm) -> None:
    """Debian builds libhashkit without hsieh: pylibmc refuses it, and omcache must too.

    (Placing keys some other way would silently split a cache shared with pylibmc.)
    """
    specs = [s.render(farm) for s in FOUR]
    with pytest.raises(pylibmc.Error):
        pylibmc.Client(specs, behaviors={"hash": "hsieh"})
    for kwargs in ({"distribution": "modula", "hash": "hsieh"},
                   {"distribution": "modula", "behaviors": {"hash": "hsieh"}}):
        with pytest.raises(omcache.ConfigError, match="hsieh"):
            omcache.Client(specs, **kwargs).server_for_key("k")  # type: ignore[arg-type]


def test_keys_cover_what_placement_must_handle() -> None:
    """The key set is the one the docstring promises, so the checks above mean what they say."""
    assert len(KEYS) >= 1000 and len(set(KEYS)) == len(KEYS)
    assert sum(len(k) == 250 for k in KEYS) >= 100
    utf8 = [k for k in KEYS if any(b >= 0x80 for b in k) and isinstance(client_key(k), str)]
    raw = [k for k in KEYS if isinstance(client_key(k), bytes)]
    assert len(utf8) >= 300 and len(raw) >= 100
    assert any(len(k) == 250 and k in utf8 for k in KEYS)
    assert len(CASES) + len(PM_CASES) >= 20
