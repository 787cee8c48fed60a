"""TLS on the client port with the official client's SSL option (issue 13):
Session(..., use_ssl=True, ca_certs=...) against duetd started with --tls-cert and
--tls-key, certificates made by openssl in the test's directory. A plain client and
a client that does not trust the server's CA are refused, and the server goes on
serving; with --tls-client-ca the client's certificate (client_cert, client_key) is
required."""

import shutil
import subprocess

import pytest
from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.exception import IoTDBConnectionException, StatementExecutionException

from helpers import query_rows

# No skip when openssl is missing: scripts/test.sh installs it, and a TLS suite that skips itself
# would pass without checking anything.
assert shutil.which("openssl") is not None, "the TLS tests make their certificates with the openssl command"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", cwd=d)
    return d / f"{name}.pem"


def issue(d, ca, name, san="DNS:localhost,IP:127.0.0.1"):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext", cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    ca = make_ca(d, "ca")
    rogue = make_ca(d, "rogue")
    cert, key = issue(d, "ca", "server")
    return {"dir": d, "ca": ca, "rogue": rogue, "cert": cert, "key": key}


def tls_server(duetd_factory, certs, extra=()):
    return duetd_factory("tls", extra_args=[
        "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]), *extra])


def test_official_client_over_tls(duetd_factory, certs):
    srv = tls_server(duetd_factory, certs)
    s = srv.session(use_ssl=True, ca_certs=str(certs["ca"]))
    try:
        s.execute_non_query_statement("insert into root.tls.d(time, s) values (1, 42)")
        s.insert_record("root.tls.d", 2, ["s"], [TSDataType.INT64], [43])
        rows = query_rows(s, "select s from root.tls.d")
        assert [r["root.tls.d.s"] for r in rows] == [42, 43]
    finally:
        s.close()
    # The compact protocol (the client's rpc compression) runs over TLS the same way.
    compact = srv.session(compact=True, use_ssl=True, ca_certs=str(certs["ca"]))
    try:
        assert len(query_rows(compact, "select s from root.tls.d")) == 2
    finally:
        compact.close()


def test_plain_and_untrusted_clients_are_refused_and_the_server_goes_on(duetd_factory, certs):
    srv = tls_server(duetd_factory, certs)
    # A plain client's openSession is answered (not left waiting) with the reason.
    plain = Session(srv.host, srv.port, "root", "root")
    with pytest.raises(StatementExecutionException) as e:
        plain.open(False)
    assert "TLS connections only" in str(e.value)
    untrusted = Session(srv.host, srv.port, "root", "root", use_ssl=True,
                        ca_certs=str(certs["rogue"]))
    # The client's handshake fails (the Python client reports only "Could not connect").
    with pytest.raises(IoTDBConnectionException):
        untrusted.open(False)
    s = srv.session(use_ssl=True, ca_certs=str(certs["ca"]))
    try:
        assert query_rows(s, "show databases") == []
    finally:
        s.close()


def test_client_certificates_when_the_server_requires_them(duetd_factory, certs):
    d = certs["dir"]
    client_ca = make_ca(d, "clients")
    cert, key = issue(d, "clients", "operator", san="DNS:operator")
    srv = tls_server(duetd_factory, certs, ["--tls-client-ca", str(client_ca)])
    without = Session(srv.host, srv.port, "root", "root", use_ssl=True,
                      ca_certs=str(certs["ca"]))
    with pytest.raises(Exception):
        without.open(False)
        without.execute_non_query_statement("create database root.nocert")
    s = srv.session(use_ssl=True, ca_certs=str(certs["ca"]),
                    client_cert=str(cert), client_key=str(key))
    try:
        s.execute_non_query_statement("create database root.mtls")
        assert [r["Database"] for r in query_rows(s, "show databases")] == ["root.mtls"]
    finally:
        s.close()
