"""`ledgerflow gateway --ssl-keyfile/--ssl-certfile` as a real process: the SDK (in its own
process) logs to it over https trusting a private CA from
LEDGERFLOW_TRACKING_SERVER_CERT_PATH, gRPC speaks TLS on its port, and plain HTTP or an
untrusted certificate is refused. The CA and the server's certificate are made here."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto.ledgerflow_pb2_grpc import LedgerflowStub
from tests.conftest import PYTHON, free_port, python_env

SDK_SCRIPT = """
import uuid
import ledgerflow as lf
c = lf.Client()
experiment = c.create_experiment(f"over-tls-{uuid.uuid4().hex}")
run = c.create_run(experiment)
c.log_metric(run.info.run_id, "loss", 0.25)
c.set_terminated(run.info.run_id)
print(c.get_metric_history(run.info.run_id, "loss")[0].value)
"""


@dataclass
class Pki:
    ca: Path
    key: Path
    cert: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(folder: Path) -> Pki:
    """A private CA, and a certificate it signs for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("ledgerflow test CA"))
        .issuer_name(_name("ledgerflow test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.pem", folder / "server-key.pem", folder / "server.pem")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@dataclass
class TlsGateway:
    url: str
    grpc_address: str
    pki: Pki


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[TlsGateway]:
    pki = make_pki(tmp_path)
    port, grpc_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(tmp_path / "data"), "gateway",
             "--port", str(port), "--grpc-port", str(grpc_port),
             "--ssl-keyfile", str(pki.key), "--ssl-certfile", str(pki.cert)],
            stdout=out, stderr=subprocess.STDOUT, env=python_env(),
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while f"listening on {url}" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield TlsGateway(url, f"127.0.0.1:{grpc_port}", pki)
    finally:
        proc.terminate()
        proc.wait(30)


def sdk(url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = python_env() | {"LEDGERFLOW_TRACKING_URI": url} | env
    environment["LEDGERFLOW_SPOOL_DIR"] = str(cwd / "spool")
    return subprocess.run(
        [PYTHON, "-c", SDK_SCRIPT], env=environment, cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_the_sdk_logs_over_https_trusting_a_private_ca(gateway: TlsGateway, tmp_path: Path):
    done = sdk(gateway.url, tmp_path, LEDGERFLOW_TRACKING_SERVER_CERT_PATH=str(gateway.pki.ca))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.25"
    # MLflow's name for the same setting works too
    done = sdk(gateway.url, tmp_path, MLFLOW_TRACKING_SERVER_CERT_PATH=str(gateway.pki.ca))
    assert done.returncode == 0, done.stderr
    trusting = ssl.create_default_context(cafile=str(gateway.pki.ca))
    assert httpx.get(gateway.url + "/health", verify=trusting).status_code == 200


def test_plain_http_and_an_untrusted_certificate_are_refused(gateway: TlsGateway, tmp_path: Path):
    with pytest.raises(httpx.HTTPError):
        httpx.get(gateway.url.replace("https://", "http://") + "/health", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(gateway.url + "/health", timeout=5)  # the system's CAs do not know ours


def test_grpc_speaks_tls_on_its_port(gateway: TlsGateway):
    credentials = grpc.ssl_channel_credentials(root_certificates=gateway.pki.ca.read_bytes())
    with grpc.secure_channel(gateway.grpc_address, credentials) as channel:
        reply = LedgerflowStub(channel).Execute(
            pb.CommandRequest(command="CreateExperiment", body=b'{"name": "grpc-tls"}'), timeout=30
        )
        assert reply.body
    with grpc.insecure_channel(gateway.grpc_address) as channel, pytest.raises(grpc.RpcError):
        LedgerflowStub(channel).Execute(
            pb.CommandRequest(command="CreateExperiment", body=b'{"name": "plain"}'), timeout=5
        )


def test_a_key_without_its_certificate_is_refused_naming_the_flag(tmp_path: Path):
    done = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(tmp_path / "data"), "gateway",
         "--ssl-keyfile", str(tmp_path / "key.pem")],
        env=python_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--ssl-certfile is missing" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_model_server_speaks_tls_over_rest_and_grpc(tracking: Path, tmp_path: Path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import ledgerflow as lf
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2 as oip
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as oip_grpc
    from tests.e2e.test_cli import cli_env

    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    model = LogisticRegression().fit(x, [0, 1, 1, 0])
    with lf.start_run():
        lf.sklearn.log_model(model, name="model", registered_model_name="tiny")
    pki = make_pki(tmp_path)
    port, grpc_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "ledgerflow.cli", "serve", "-m", "models:/tiny/1", "-p", str(port),
             "--grpc-port", str(grpc_port),
             "--ssl-keyfile", str(pki.key), "--ssl-certfile", str(pki.cert)],
            env=cli_env(tracking), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/ping", verify=trusting, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        r = httpx.post(url + "/invocations", json={"inputs": x.tolist()}, verify=trusting)
        assert r.json() == {"predictions": model.predict(x).tolist()}
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5)
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(oip.ServerLiveRequest(), timeout=30).live
    finally:
        proc.terminate()
        proc.wait(30)
