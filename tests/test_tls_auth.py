"""TLS (memcached -Z) and authentication (SASL -S, ASCII -Y) against Debian's memcached.

Certificates are made at test time with the ``cryptography`` package: a CA,
a server certificate for 127.0.0.1 and localhost, an expired one, a client
certificate, and a CA nobody trusts.  memcached runs as nobody when the
tests run as root, so every file lives in a world-readable directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

import omcache
import omcache_pylibmc
from omcache.testing import MemcachedProcess

x509 = pytest.importorskip("cryptography.x509", reason="cryptography is in the test extras")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

PROTOCOLS = ["meta", "text", "binary"]
# Timeouts of the failing cases; each must fail well within them.
CONNECT_TIMEOUT = 2.0
IO_TIMEOUT = 2.0
# Room for a loaded machine (2 shared cores): a hang would take far longer.
FAIL_BOUND = CONNECT_TIMEOUT + IO_TIMEOUT + 2.0


def _name(cn: str) -> "x509.Name":
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class PKI:
    dir: str
    ca: str
    other_ca: str
    server_cert: str
    server_key: str
    expired_cert: str
    client_cert: str
    client_key: str


def _make_ca(cn: str) -> Tuple[ec.EllipticCurvePrivateKey, "x509.Certificate"]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: "x509.Certificate",
    key: ec.EllipticCurvePrivateKey,
    cn: str,
    server: bool,
    expired: bool = False,
) -> "x509.Certificate":
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=3), now - datetime.timedelta(days=2)) if expired else (
        now - datetime.timedelta(days=1), now + datetime.timedelta(days=1))
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return b.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Iterator[PKI]:
    d = tempfile.mkdtemp(prefix="omcache-tls-")
    os.chmod(d, 0o755)
    ca_key, ca = _make_ca("omcache test CA")
    _, other = _make_ca("untrusted CA")
    skey = ec.generate_private_key(ec.SECP256R1())
    ckey = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    p = PKI(
        dir=d,
        ca=_write(os.path.join(d, "ca.pem"), ca.public_bytes(pem)),
        other_ca=_write(os.path.join(d, "other-ca.pem"), other.public_bytes(pem)),
        server_cert=_write(os.path.join(d, "server.pem"), _issue(ca_key, ca, skey, "memcached", True).public_bytes(pem)),
        server_key=_write(os.path.join(d, "server.key"), _key_pem(skey)),
        expired_cert=_write(
            os.path.join(d, "expired.pem"), _issue(ca_key, ca, skey, "memcached", True, expired=True).public_bytes(pem)),
        client_cert=_write(os.path.join(d, "client.pem"), _issue(ca_key, ca, ckey, "omcache", False).public_bytes(pem)),
        client_key=_write(os.path.join(d, "client.key"), _key_pem(ckey)),
    )
    yield p
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., MemcachedProcess]]:
    started: List[MemcachedProcess] = []
    if shutil.which("memcached") is None:
        if os.environ.get("CI"):
            pytest.fail("memcached is not installed, and CI must run the integration tests")
        pytest.skip("memcached is not installed")

    def start(*args: str, env: Optional[dict] = None, plain: bool = False) -> MemcachedProcess:
        p = MemcachedProcess(extra_args=list(args), env=env, plain_probe=plain).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _tls_args(pki: PKI, cert: Optional[str] = None, *extra: str) -> List[str]:
    return ["-Z", "-o", f"ssl_chain_cert={cert or pki.server_cert},ssl_key={pki.server_key}", "-I", "4m", *extra]


@pytest.fixture(scope="module")
def tls_server(pki: PKI, servers: Callable[..., MemcachedProcess]) -> MemcachedProcess:
    return servers(*_tls_args(pki))


def _client(addr: str, **kw: object) -> omcache.Client:
    kw.setdefault("connect_timeout", CONNECT_TIMEOUT)
    kw.setdefault("io_timeout", IO_TIMEOUT)
    kw.setdefault("failover", False)
    return omcache.Client([addr], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_round_trips(tls_server: MemcachedProcess, pki: PKI, protocol: str) -> None:
    with _client(tls_server.address, protocol=protocol, tls=True, tls_ca_file=pki.ca, max_value_size=8 << 20) as c:
        c.set("k", b"v1")
        assert c.get("k") == b"v1"
        big = os.urandom(3 << 20)
        c.set("big", big)
        assert c.get("big") == big
        keys = [f"m{i}" for i in range(100)]
        c.set_multi({k: k.encode() for k in keys})
        assert c.get_multi(keys) == {k: k.encode() for k in keys}
        n = f"n-{protocol}"
        assert c.incr(n, 1, initial=5) == 5
        assert c.delete("k")
        assert c.get("k") is None
        # The pooled connection, idle a moment (TLS 1.3 tickets arrive
        # then), still serves a non-idempotent request.
        time.sleep(0.1)
        assert c.incr(n, 2) == 7


def test_tls_localhost_name_and_server_name(tls_server: MemcachedProcess, pki: PKI) -> None:
    port = tls_server.address.rsplit(":", 1)[1]
    with _client(f"localhost:{port}", tls=True, tls_ca_file=pki.ca) as c:
        c.set("a", b"1")
        assert c.get("a") == b"1"
    with _client(tls_server.address, tls=True, tls_ca_file=pki.ca, tls_server_name="localhost") as c:
        assert c.get("a") == b"1"


def _fails(exc: type, match: str, addr: str, **kw: object) -> str:
    start = time.monotonic()
    with _client(addr, **kw) as c:
        with pytest.raises(exc, match=match) as ei:
            c.get("k")
    assert time.monotonic() - start < FAIL_BOUND
    return str(ei.value)


def test_tls_wrong_ca(tls_server: MemcachedProcess, pki: PKI) -> None:
    msg = _fails(omcache.TLSError, "unknown authority", tls_server.address, tls=True, tls_ca_file=pki.other_ca)
    assert tls_server.address in msg
    assert issubclass(omcache.TLSError, omcache.ConfigError)


def test_tls_wrong_name(tls_server: MemcachedProcess, pki: PKI) -> None:
    _fails(omcache.TLSError, "cache.example.com", tls_server.address, tls=True, tls_ca_file=pki.ca,
           tls_server_name="cache.example.com")


def test_tls_expired(pki: PKI, servers: Callable[..., MemcachedProcess]) -> None:
    srv = servers(*_tls_args(pki, pki.expired_cert))
    _fails(omcache.TLSError, "expired", srv.address, tls=True, tls_ca_file=pki.ca)


def test_tls_client_plaintext_server(servers: Callable[..., MemcachedProcess], pki: PKI) -> None:
    plain = servers(plain=True)
    _fails(omcache.TLSError, "TLS", plain.address, tls=True, tls_ca_file=pki.ca)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plaintext_client_tls_server(tls_server: MemcachedProcess, protocol: str) -> None:
    _fails(omcache.ConnectionError, r"speaks TLS .*tls=True", tls_server.address, protocol=protocol)


def test_tls_no_verify(tls_server: MemcachedProcess) -> None:
    with _client(tls_server.address, tls=True, tls_verify=False) as c:
        c.set("nv", b"x")
        assert c.get("nv") == b"x"


def test_mutual_tls(pki: PKI, servers: Callable[..., MemcachedProcess]) -> None:
    # ssl_verify_mode=3: the server requires a certificate (peer + fail if none).
    srv = servers(*_tls_args(pki, None, "-o", f"ssl_verify_mode=3,ssl_ca_cert={pki.ca}"))
    for protocol in PROTOCOLS:
        with _client(srv.address, protocol=protocol, tls=True, tls_ca_file=pki.ca,
                     tls_cert_file=pki.client_cert, tls_key_file=pki.client_key) as c:
            c.set("mt", protocol.encode())
            assert c.get("mt") == protocol.encode()
    for protocol in PROTOCOLS:
        _fails(omcache.ConnectionError, "client certificate", srv.address, protocol=protocol, tls=True, tls_ca_file=pki.ca)


def test_tls_option_validation(pki: PKI) -> None:
    with pytest.raises(omcache.ConfigError, match="does not exist"):
        omcache.Client(["127.0.0.1:1"], tls=True, tls_ca_file=os.path.join(pki.dir, "missing.pem"))
    with pytest.raises(omcache.ConfigError, match="tls_min_version"):
        omcache.Client(["127.0.0.1:1"], tls=True, tls_min_version="1.4")
    with pytest.raises(omcache.ConfigError, match="both"):
        omcache.Client(["127.0.0.1:1"], tls=True, tls_cert_file=pki.client_cert)
    with pytest.raises(omcache.ConfigError, match="without tls=True"):
        omcache.Client(["127.0.0.1:1"], tls_ca_file=pki.ca)
    with pytest.raises(omcache.ConfigError, match="line break"):
        omcache.Client(["127.0.0.1:1"], username="u", password="p\nw")
    with pytest.raises(omcache.ConfigError, match="username"):
        omcache.Client(["127.0.0.1:1"], password="pw")
    # Through SerdeClient's **client_options, and TLS 1.3 only.
    s = omcache.SerdeClient(["127.0.0.1:1"], tls=True, tls_ca_file=pki.ca, tls_min_version="1.3")
    s.close()


# -- authentication -----------------------------------------------------------


@pytest.fixture(scope="module")
def auth_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="omcache-auth-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ascii_server(auth_dir: str, servers: Callable[..., MemcachedProcess]) -> MemcachedProcess:
    path = _write(os.path.join(auth_dir, "authfile"), b"alice:wonder-land-pw\n")
    return servers("-Y", path)


@pytest.fixture(scope="module")
def sasl_server(auth_dir: str, servers: Callable[..., MemcachedProcess]) -> MemcachedProcess:
    saslpasswd2 = shutil.which("saslpasswd2") or ("/usr/sbin/saslpasswd2" if os.path.exists("/usr/sbin/saslpasswd2") else None)
    if saslpasswd2 is None:
        if os.environ.get("CI"):
            pytest.fail("saslpasswd2 (sasl2-bin) is not installed, and CI must run this test")
        pytest.skip("saslpasswd2 (sasl2-bin) is not installed")
    db = os.path.join(auth_dir, "sasldb2")
    subprocess.run([saslpasswd2, "-a", "memcached", "-c", "-p", "-f", db, "bob"], input=b"builder-pw", check=True)
    os.chmod(db, 0o644)
    _write(os.path.join(auth_dir, "memcached.conf"), f"mech_list: plain\nsasldb_path: {db}\n".encode())
    return servers("-S", env={"SASL_CONF_PATH": auth_dir})


@pytest.mark.parametrize("protocol", ["meta", "text"])
def test_ascii_auth(ascii_server: MemcachedProcess, protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="omcache")
    with _client(ascii_server.address, protocol=protocol, username="alice", password="wonder-land-pw") as c:
        c.set("a", b"1")
        assert c.get("a") == b"1"
        assert c.get_multi(["a", "zz"]) == {"a": b"1"}
    msg = _fails(omcache.AuthenticationError, "alice", ascii_server.address, protocol=protocol, username="alice",
                 password="not-the-pw")
    assert "not-the-pw" not in msg and "not-the-pw" not in caplog.text
    assert issubclass(omcache.AuthenticationError, omcache.Error)
    # Without credentials the server refuses every command.
    _fails(omcache.Error, ".", ascii_server.address, protocol=protocol)


def test_ascii_auth_against_a_server_without_it(servers: Callable[..., MemcachedProcess]) -> None:
    plain = servers(plain=True)
    msg = _fails(omcache.AuthenticationError, "-Y", plain.address, protocol="text", username="alice", password="pw-x")
    assert "pw-x" not in msg
    with _client(plain.address) as c:
        assert c.stats()[plain.address]["curr_items"] == "0"  # the credentials were not stored


def test_sasl_binary(sasl_server: MemcachedProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="omcache")
    with _client(sasl_server.address, protocol="binary", username="bob", password="builder-pw") as c:
        c.set("b", b"2")
        assert c.get("b") == b"2"
        assert c.get_multi(["b", "zz"]) == {"b": b"2"}
    msg = _fails(omcache.AuthenticationError, "bob", sasl_server.address, protocol="binary", username="bob",
                 password="wrong-secret")
    assert "wrong-secret" not in msg and "wrong-secret" not in caplog.text


def test_sasl_pylibmc_reference(sasl_server: MemcachedProcess) -> None:
    pylibmc = pytest.importorskip("pylibmc")
    assert omcache_pylibmc.support_sasl is True
    ref = pylibmc.Client([sasl_server.address], binary=True, username="bob", password="builder-pw")
    ours = omcache_pylibmc.Client([sasl_server.address], binary=True, username="bob", password="builder-pw")
    ref.set("shared", "from pylibmc")
    assert ours.get("shared") == "from pylibmc"
    ours.set("shared2", {"n": 1})
    assert ref.get("shared2") == {"n": 1}
    # The same argument checks as pylibmc's.
    for kw in ({"username": "bob"}, {"username": "bob", "password": "builder-pw"}):
        with pytest.raises(TypeError) as theirs:
            pylibmc.Client([sasl_server.address], **kw)
        with pytest.raises(TypeError) as mine:
            omcache_pylibmc.Client([sasl_server.address], **kw)
        assert str(mine.value) == str(theirs.value)
    # A wrong password fails in both.
    # A wrong password: pylibmc's base Error with libmemcached's
    # AUTHENTICATION FAILURE (41) in both.
    bad_ref = pylibmc.Client([sasl_server.address], binary=True, username="bob", password="nope-pw")
    with pytest.raises(pylibmc.Error) as theirs_e:
        bad_ref.get("shared")
    bad = omcache_pylibmc.Client([sasl_server.address], binary=True, username="bob", password="nope-pw")
    with pytest.raises(omcache_pylibmc.Error) as ei:
        bad.get("shared")
    assert type(theirs_e.value) is pylibmc.Error and type(ei.value) is omcache_pylibmc.Error
    assert str(theirs_e.value).startswith("error 41 from memcached_get(shared)")
    assert str(ei.value).startswith("error 41 from memcached_get(shared)")
    assert "nope-pw" not in str(ei.value)


def test_tls_handshake_timeout(tls_server: MemcachedProcess, pki: PKI, servers: Callable[..., MemcachedProcess]) -> None:
    # A stopped server accepts TCP connections (the kernel does) but never
    # answers the handshake: a TimeoutError, as a connect timeout.
    srv = servers(*_tls_args(pki))
    srv.pause()
    try:
        start = time.monotonic()
        with _client(srv.address, tls=True, tls_ca_file=pki.ca, connect_timeout=0.5) as c:
            with pytest.raises(omcache.TimeoutError, match="handshake"):
                c.get("k")
        assert time.monotonic() - start < 0.5 + FAIL_BOUND
    finally:
        srv.resume()


def test_tls_after_fork(tls_server: MemcachedProcess, pki: PKI) -> None:
    c = _client(tls_server.address, tls=True, tls_ca_file=pki.ca)
    c.set("fork", b"parent")
    pid = os.fork()
    if pid == 0:  # the child handshakes on its own connection
        code = 1
        try:
            code = 0 if c.get("fork") == b"parent" and c.set("fork2", b"child") else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.get("fork2") == b"child"
    c.close()


def test_cli_tls_and_password_from_environment(ascii_server: MemcachedProcess, tls_server: MemcachedProcess,
                                               pki: PKI) -> None:
    import sys

    cli = [sys.executable, "-m", "omcache"]
    r = subprocess.run(cli + ["--servers", tls_server.address, "--tls", "--tls-ca-file", pki.ca, "set", "cli", "v"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cli + ["--servers", tls_server.address, "--tls-ca-file", pki.ca, "get", "cli"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == b"v", r.stderr
    env = {**os.environ, "OMCACHE_PASSWORD": "wonder-land-pw"}
    args = ["--servers", ascii_server.address, "--protocol", "text", "--username", "alice", "set", "cli", "w"]
    assert subprocess.run(cli + args, capture_output=True, timeout=60, env=env).returncode == 0
    env["OMCACHE_PASSWORD"] = "bad-pw-value"
    r = subprocess.run(cli + args, capture_output=True, timeout=60, env=env)
    assert r.returncode == 2 and b"alice" in r.stderr and b"bad-pw-value" not in r.stderr + r.stdout
    del env["OMCACHE_PASSWORD"]
    r = subprocess.run(cli + args, capture_output=True, timeout=60, env=env)
    assert r.returncode == 2 and b"OMCACHE_PASSWORD" in r.stderr


def test_tls_extension_keywords(tls_server: MemcachedProcess, pki: PKI) -> None:
    mc = omcache_pylibmc.Client([tls_server.address], binary=True, tls=True, tls_ca_file=pki.ca)
    mc.set("pl", "x")
    assert mc.get("pl") == "x"
    assert mc.clone().get("pl") == "x"
    from omcache import memcache

    m = memcache.Client([tls_server.address], tls=True, tls_ca_file=pki.ca)
    m.set("pm", "y")
    assert m.get("pm") == "y"
    o = omcache.OMcache([tls_server.address], tls=True, tls_ca_file=pki.ca)
    o.set(b"po", b"z")
    assert o.get(b"po") == b"z"


def test_embedded_server_tls(pki: PKI) -> None:
    from omcache.testing import EmbeddedServer

    with EmbeddedServer(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key) as srv:
        for protocol in PROTOCOLS:
            with _client(srv.address, protocol=protocol, tls=True, tls_ca_file=pki.ca) as c:
                c.set("e", protocol.encode())
                assert c.get("e") == protocol.encode()
                assert c.get_multi(["e", "zz"]) == {"e": protocol.encode()}
        _fails(omcache.TLSError, "unknown authority", srv.address, tls=True, tls_ca_file=pki.other_ca)
        _fails(omcache.ConnectionError, "tls=True", srv.address)
    with pytest.raises(omcache.ConfigError, match="both"):
        EmbeddedServer(tls_cert_file=pki.server_cert)


def test_cli_serve_tls(pki: PKI) -> None:
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "omcache", "serve", "--listen", "127.0.0.1:0", "--tls-cert",
                             pki.server_cert, "--tls-key", pki.server_key], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        assert line[0] == "tcp", line
        with _client(line[1], tls=True, tls_ca_file=pki.ca) as c:
            c.set("s", b"served")
            assert c.get("s") == b"served"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_embedded_server_requires_auth(protocol: str) -> None:
    from omcache.testing import EmbeddedServer

    with EmbeddedServer(username="eve", password="embedded-pw") as srv:
        with _client(srv.address, protocol=protocol, username="eve", password="embedded-pw") as c:
            c.set("x", b"1")
            assert c.get("x") == b"1"
            assert c.get_multi(["x", "zz"]) == {"x": b"1"}
        msg = _fails(omcache.AuthenticationError, "eve", srv.address, protocol=protocol, username="eve",
                     password="other-pw")
        assert "other-pw" not in msg
        _fails(omcache.Error, ".", srv.address, protocol=protocol)


def test_cli_serve_requires_auth() -> None:
    import sys

    env = {**os.environ, "OMCACHE_PASSWORD": "served-pw"}
    proc = subprocess.Popen([sys.executable, "-m", "omcache", "serve", "--listen", "127.0.0.1:0", "--require-user",
                             "sam"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        addr = proc.stdout.readline().decode().split()[1]
        with _client(addr, protocol="binary", username="sam", password="served-pw") as c:
            c.set("s", b"ok")
            assert c.get("s") == b"ok"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_multi_server_fan_out(pki: PKI, servers: Callable[..., MemcachedProcess], protocol: str) -> None:
    # Two TLS servers driven from one thread (the engine's PollSet), with
    # values big enough to span many TLS records, and threads sharing the
    # client.
    a, b = servers(*_tls_args(pki)), servers(*_tls_args(pki))
    with omcache.Client([a.address, b.address], protocol=protocol, tls=True, tls_ca_file=pki.ca,
                        connect_timeout=CONNECT_TIMEOUT, io_timeout=5.0, max_value_size=8 << 20) as c:
        values = {f"k{i}": os.urandom(100_000 if i % 50 == 0 else 100) for i in range(600)}
        assert c.set_multi(values) == []
        assert c.get_multi(list(values)) == values
        import threading

        errors: List[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(5):
                    assert c.get_multi(list(values)[:200]) == {k: values[k] for k in list(values)[:200]}
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert errors == []
