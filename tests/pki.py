"""A throw-away PKI for RadSec tests, made with the openssl command line.

``make_pki(directory)`` writes (EC P-256 keys, unencrypted):

- ``ca.pem`` / ``ca.key``: the CA NAS and server certificates chain to;
- ``server.pem`` / ``server.key``: CN=localhost, SAN localhost and 127.0.0.1;
- ``renewed.pem`` / ``renewed.key``: the same name, another key: a renewed server certificate;
- ``nas.pem`` / ``nas.key``: CN=nas-1, a NAS certificate the daemon accepts;
- ``other.pem`` / ``other.key``: CN=nas-2 from the same CA (for pins);
- ``rogue.pem`` / ``rogue.key``: CN=nas-1 from another CA (``rogue-ca.pem``): refused;
- ``expired.pem`` / ``expired.key``: CN=nas-1 from the right CA, expired 30 days ago.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

OPENSSL = shutil.which("openssl")


def _run(directory: Path, *args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=directory, check=True, capture_output=True, timeout=60)


def _key(directory: Path, name: str) -> None:
    _run(directory, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", f"{name}.key")  # fmt: skip


def _ca(directory: Path, name: str, subject: str) -> None:
    _key(directory, name)
    _run(directory, "req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days", "30",
         "-subj", subject, "-out", f"{name}.pem",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip


def _leaf(directory: Path, name: str, subject: str, ca: str, extensions: str) -> None:
    _key(directory, name)
    _run(directory, "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
    (directory / f"{name}.ext").write_text(extensions)
    _run(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
         f"{ca}.key", "-CAcreateserial", "-sha256", "-days", "30", "-extfile", f"{name}.ext",
         "-out", f"{name}.pem")  # fmt: skip


def _expired(directory: Path, name: str, subject: str, ca: str) -> None:
    # `openssl x509` cannot date a certificate in the past; `openssl ca` can.
    _key(directory, name)
    _run(directory, "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca=t\n[t]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
        "default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n"
    )
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    (directory / f"{name}.ext").write_text("extendedKeyUsage=clientAuth\n")
    now = datetime.now(UTC)
    stamp = "%Y%m%d%H%M%SZ"
    _run(directory, "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", f"{ca}.pem",
         "-keyfile", f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.pem",
         "-extfile", f"{name}.ext",
         "-startdate", (now - timedelta(days=60)).strftime(stamp),
         "-enddate", (now - timedelta(days=30)).strftime(stamp))  # fmt: skip


def make_pki(directory: Path) -> Path:
    """Write the PKI described above into ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca", "/CN=radsec-test-ca")
    _ca(directory, "rogue-ca", "/CN=rogue-ca")
    server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    _leaf(directory, "server", "/CN=localhost", "ca", server_ext)
    _leaf(directory, "renewed", "/CN=localhost", "ca", server_ext)  # a renewed server certificate
    client_ext = "extendedKeyUsage=clientAuth\n"
    _leaf(directory, "nas", "/CN=nas-1", "ca", client_ext)
    _leaf(directory, "other", "/CN=nas-2", "ca", client_ext)
    _leaf(directory, "rogue", "/CN=nas-1", "rogue-ca", client_ext)
    _expired(directory, "expired", "/CN=nas-1", "ca")
    return directory
