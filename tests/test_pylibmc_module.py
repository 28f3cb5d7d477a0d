"""omcache_pylibmc's module surface and behaviors, compared with the real pylibmc 1.6.3.

Constants, the exception hierarchy, server spec parsing and the behaviors
mapping (defaults, validation, read-back with libmemcached's side effects)
need no server: they are compared with the real modules directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict, List

import pytest

import omcache_pylibmc
from omcache_pylibmc import _pylibmc as ours_c


# The references' versions are checked once per session (conftest.py's
# reference_clients fixture): a wrong or missing one stops this module.
pytestmark = pytest.mark.usefixtures("reference_clients")

try:
    import _pylibmc as real_c
    import pylibmc as real
except ImportError:  # reported by the reference_clients fixture
    real = real_c = None

# Nothing listens there: these clients are only configured, never used.
DEAD = "127.0.0.1:9"


def test_version_attributes() -> None:
    assert omcache_pylibmc.__version__ == real.__version__ == "1.6.3"
    assert ours_c.libmemcached_version == real_c.libmemcached_version == "1.1.4"
    assert ours_c.libmemcached_version_hex == real_c.libmemcached_version_hex
    assert ours_c.support_compression is True
    assert ours_c.support_sasl is real_c.support_sasl is True
    assert "omcache" in omcache_pylibmc.build_info() and "pylibmc 1.6.3" in omcache_pylibmc.build_info()


def test_constants_equal_pylibmc() -> None:
    names = [n for n in dir(real_c) if n.startswith(("hash_", "distribution_", "server_type_", "callback_"))]
    assert len(names) == 22
    for n in names:
        assert getattr(ours_c, n) == getattr(real_c, n), n
        assert getattr(omcache_pylibmc, n) == getattr(real, n), n
    assert ours_c.all_behaviors == real_c.all_behaviors
    assert ours_c.all_callbacks == real_c.all_callbacks
    assert omcache_pylibmc.hashers == real.hashers
    assert omcache_pylibmc.distributions == real.distributions
    assert omcache_pylibmc.consts.hashers_rvs == real.consts.hashers_rvs
    assert omcache_pylibmc.consts.distributions_rvs == real.consts.distributions_rvs


def test_public_names_cover_pylibmc() -> None:
    mine = set(dir(omcache_pylibmc))
    missing = {n for n in dir(real) if not n.startswith("__") and n not in mine}
    assert not missing
    assert set(real.__all__) - {"__doc__", "__file__", "__loader__", "__name__", "__package__", "__spec__"} <= set(omcache_pylibmc.__all__)
    missing_c = {n for n in dir(real_c) if not n.startswith("__") and not hasattr(ours_c, n)}
    assert not missing_c
    for mod in ("client", "consts", "pools"):
        assert getattr(omcache_pylibmc, mod).__name__ == f"omcache_pylibmc.{mod}"


def test_exceptions_same_names_codes_and_hierarchy() -> None:
    assert [n for n, _ in ours_c.exceptions] == [n for n, _ in real_c.exceptions]
    ours = dict(ours_c.exceptions)
    theirs = dict(real_c.exceptions)
    for name, cls in ours.items():
        assert cls.__name__ == name
        assert getattr(cls, "retcode", None) == getattr(theirs[name], "retcode", None), name
        assert getattr(omcache_pylibmc, name) is cls
        assert getattr(omcache_pylibmc.consts, name) is cls
        for other, ocls in ours.items():
            assert issubclass(cls, ocls) == issubclass(theirs[name], theirs[other]), (name, other)
        assert issubclass(cls, Exception) and not issubclass(cls, (ValueError, KeyError))
    assert omcache_pylibmc.MemcachedError is omcache_pylibmc.Error
    assert omcache_pylibmc.consts.errors == tuple(cls for _, cls in ours_c.exceptions)


def test_exceptions_pickle() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(omcache_pylibmc.NotFound("1 keys not found")))
    assert type(e) is omcache_pylibmc.NotFound and str(e) == "1 keys not found"


SPECS = [
    "host", "host:1", "host:1:2", "[::1]", "[::1]:5", "[::1]:5:3", "/sock", "udp:h:5",
    "udp:[abcd:abcd::1]:5555:2", "h:0", "h:70000", "", "111.122.133.144",
    "h:x", "h:1:x", "::1", "[::1", "[::1]x",
]


@pytest.mark.parametrize("spec", SPECS)
def test_translate_server_spec(spec: str) -> None:
    def outcome(f: Any, *a: Any, **k: Any) -> Any:
        try:
            return f(*a, **k)
        except Exception as e:  # noqa: BLE001
            return type(e).__name__

    assert outcome(omcache_pylibmc.client.translate_server_spec, spec) == outcome(real.client.translate_server_spec, spec)
    assert outcome(omcache_pylibmc.client.translate_server_spec, spec, weight=3, port=7) == outcome(
        real.client.translate_server_spec, spec, weight=3, port=7
    )


def _outcome(lib: Any, servers: List[Any], behaviors: List[Dict[str, Any]], binary: bool = False) -> Any:
    """Apply behaviors dicts in turn; the read-back after each, or the error."""
    out: List[Any] = []
    try:
        mc = lib.Client(servers, binary=binary)
    except Exception as e:  # noqa: BLE001
        return [("construct", type(e).__name__)]
    for b in behaviors:
        try:
            mc.behaviors = b
        except KeyError as e:
            # An unknown hash or distribution name: pylibmc's bare KeyError;
            # omcache's is a KeyError subclass with a message (docs/pylibmc.md).
            out.append(("raises", "KeyError", e.args))
        except Exception as e:  # noqa: BLE001
            out.append(("raises", type(e).__name__))
        got = dict(mc.behaviors)
        # libmemcached connects to read the kernel's socket buffer sizes;
        # omcache does not (0 here, 0 for pylibmc's dead server too).
        out.append(got)
    return out


BEHAVIOR_SEQUENCES: List[List[Dict[str, Any]]] = [
    [{}],
    [{"ketama": 1}], [{"ketama": True}], [{"ketama": 2}], [{"ketama": 1}, {"ketama": 0}],
    [{"ketama_weighted": 1}], [{"ketama_weighted": True, "ketama": 0}], [{"ketama_weighted": 0}],
    [{"ketama_weighted": 1}, {"ketama_weighted": 0}], [{"ketama_weighted": 1}, {"distribution": "consistent"}],
    [{"distribution": "consistent"}], [{"distribution": "consistent ketama"}],
    [{"distribution": "consistent weighted"}], [{"distribution": "consistent ketama spy"}],
    [{"distribution": "modula"}], [{"distribution": "consistent max"}], [{"distribution": "bogus"}],
    [{"distribution": 1}], [{"distribution": None}], [{"ketama": 1, "distribution": "modula"}],
    [{"hash": "md5"}], [{"hash": "crc"}], [{"hash": "murmur"}], [{"hash": "jenkins"}], [{"hash": "fnv1a_64"}],
    [{"hash": "fnv1_32"}], [{"hash": "fnv1a_32"}], [{"hash": "fnv1_64"}], [{"hash": "default"}],
    [{"hash": "hsieh"}], [{"hash": "bogus"}], [{"hash": 1}], [{"hash": None}],
    [{"ketama_hash": "md5"}], [{"ketama_hash": "crc"}], [{"ketama_hash": 1}], [{"ketama_hash": 0}], [{"ketama_hash": "hsieh"}],
    [{"connect_timeout": 100}], [{"connect_timeout": 0}], [{"connect_timeout": -1}],
    [{"connect_timeout": 2**31}], [{"connect_timeout": "1"}], [{"connect_timeout": 1.5}], [{"connect_timeout": None}],
    [{"send_timeout": 5000}], [{"receive_timeout": 5000}], [{"_poll_timeout": 100}],
    [{"remove_failed": 1}], [{"remove_failed": 3}], [{"auto_eject": 1}], [{"auto_eject": 1}, {"remove_failed": 0}],
    [{"dead_timeout": 10}], [{"retry_timeout": 10}], [{"retry_timeout": -1}], [{"_retry_timeout": 7}],
    [{"_retry_timeout": 7, "retry_timeout": 3}], [{"failure_limit": 3}], [{"failure_limit": 0}],
    [{"buffer_requests": 1}], [{"_noreply": 1}], [{"no_block": 1}], [{"tcp_nodelay": 1}],
    [{"tcp_keepalive": 1}], [{"verify_keys": 1}], [{"cas": 1}], [{"cas": 5}], [{"_sort_hosts": 1}],
    [{"_io_msg_watermark": 1}], [{"_io_bytes_watermark": 1}], [{"_io_key_prefetch": 1}],
    [{"_hash_with_prefix_key": 1}], [{"_socket_send_size": 1000}], [{"_socket_recv_size": 1000}],
    [{"pickle_protocol": 2}], [{"pickle_protocol": 99}],
    [{"bogus": 1}], [{"sort_hosts": 1}], [{"noreply": 1}],
    [{"hash": "md5", "connect_timeout": "x"}], [{"cas": 1, "failure_limit": 0, "tcp_nodelay": 1}],
]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("seq", BEHAVIOR_SEQUENCES, ids=repr)
def test_behaviors_read_back_as_pylibmc(seq: List[Dict[str, Any]], binary: bool) -> None:
    assert _outcome(omcache_pylibmc, [DEAD], seq, binary) == _outcome(real, [DEAD], seq, binary)


@pytest.mark.parametrize(
    "servers",
    [[DEAD, "127.0.0.1:10:3"], ["127.0.0.1:10:1", "127.0.0.1:11:1"]],
    ids=["weighted", "unweighted"],
)
@pytest.mark.parametrize(
    "initial",
    [None, {"ketama": 1}, {"distribution": "consistent"}, {"distribution": "consistent ketama spy"}],
    ids=repr,
)
def test_server_weights_turn_weighting_on_as_in_libmemcached(servers: List[str], initial: Any) -> None:
    later = [{}, {"ketama": 1}, {"distribution": "consistent weighted"}, {"distribution": "modula"}, {"distribution": "consistent"}]

    def outcome(lib: Any) -> Any:
        mc = lib.Client(servers, behaviors=initial)
        return [dict(mc.behaviors)] + _outcome_on(mc, later)

    assert outcome(omcache_pylibmc) == outcome(real)


def _outcome_on(mc: Any, seq: List[Dict[str, Any]]) -> List[Any]:
    out = []
    for b in seq:
        mc.behaviors = b
        out.append(dict(mc.behaviors))
    return out


def test_constructor_behaviors_and_base_client() -> None:
    for lib, c in ((real, real_c), (omcache_pylibmc, ours_c)):
        mc = lib.Client([DEAD], behaviors={"ketama": True, "hash": "md5"}, binary=True)
        assert mc.behaviors["distribution"] == "consistent ketama" and mc.behaviors["hash"] == "md5"
        with pytest.raises(ValueError, match="unknown behavior names: bogus"):
            lib.Client([DEAD], behaviors={"bogus": 1})
        base = c.client([(c.server_type_tcp, "127.0.0.1", 9)], behaviors={"hash": 1, "ketama": 1})
        assert base.get_behaviors()["hash"] == 1 and base.get_behaviors()["distribution"] == 2
        with pytest.raises(TypeError, match="behavior hash must be int, not str"):
            c.client([(c.server_type_tcp, "127.0.0.1", 9)], behaviors={"hash": "md5"})
        with pytest.raises(c.Error, match="empty server list"):
            c.client([])
        with pytest.raises(ValueError, match="can't set port on unix sockets"):
            c.client([(c.server_type_unix, "/tmp/s", 5)])
        with pytest.raises(ValueError, match="can't mix transport types"):
            c.client([(c.server_type_tcp, "a", 1), (c.server_type_unix, "/s")])
        with pytest.raises(ValueError, match="bad type: 8"):
            c.client([(8, "a", 1)])
        with pytest.raises(TypeError):
            c.client(5)


def test_behavior_dict_applies_changes() -> None:
    for lib in (real, omcache_pylibmc):
        mc = lib.Client([DEAD])
        b = mc.behaviors
        b["ketama"] = True
        assert mc.behaviors["distribution"] == "consistent ketama"
        b.update({"hash": "crc", "cas": 1})
        assert mc.behaviors["hash"] == "crc" and mc.behaviors["cas"] == 1
        assert b.client is mc
        with pytest.raises(AttributeError, match="british"):
            mc.behaviours  # noqa: B018


def test_repr_str_and_attributes() -> None:
    for lib in (real, omcache_pylibmc):
        mc = lib.Client(["127.0.0.1:9", "/tmp/x.sock"[:0] or "127.0.0.1:10"], binary=True)
        assert repr(mc) == "Client(['127.0.0.1:9', '127.0.0.1:10'], binary=True)"
        assert str(mc) == "<Client for 127.0.0.1:9, 127.0.0.1:10, binary=True>"
        assert mc.addresses == ["127.0.0.1:9", "127.0.0.1:10"]
        clone = mc.clone()
        assert (type(clone), clone.addresses, clone.binary) == (type(mc), mc.addresses, mc.binary)
        assert dict(clone.behaviors) == dict(mc.behaviors)


def test_clone_copies_settings_not_state() -> None:
    mc = omcache_pylibmc.Client([DEAD], behaviors={"ketama": 1, "pickle_protocol": 2})
    clone = mc.clone()
    clone.behaviors = {"distribution": "modula"}
    assert mc.behaviors["distribution"] == "consistent ketama"
    assert clone.serialize([1]) == mc.serialize([1])


def test_install_as_pylibmc_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, omcache_pylibmc\n"
        "omcache_pylibmc.install_as_pylibmc()\n"
        "import pylibmc, _pylibmc, pylibmc.pools, pylibmc.test\n"
        "from pylibmc import autoconf\n"
        "from pylibmc.client import translate_server_spec\n"
        "assert pylibmc is omcache_pylibmc and _pylibmc is omcache_pylibmc._pylibmc\n"
        "assert pylibmc.test.make_test_client.__module__ == 'omcache_pylibmc.test'\n"
        "assert autoconf is omcache_pylibmc.autoconf and pylibmc.pools.ClientPool is omcache_pylibmc.ClientPool\n"
        "assert pylibmc.Error is _pylibmc.Error is omcache_pylibmc.Error\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.strip() == "ok", r.stderr


def test_install_as_pylibmc_refuses_after_the_real_one() -> None:
    code = "import pylibmc, omcache_pylibmc\ntry:\n omcache_pylibmc.install_as_pylibmc()\nexcept ImportError as e:\n print('refused', e)\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.startswith("refused pylibmc is already imported"), r.stderr
