"""Which TLS certificates remote mode trusts for an https:// gateway.

`LEDGERFLOW_TRACKING_SERVER_CERT_PATH` names a PEM file of the CA (or the certificate
itself) to trust instead of the system's, as for a gateway with a private CA's
certificate; `LEDGERFLOW_TRACKING_INSECURE_TLS=true` verifies nothing (for tests on a
throwaway certificate, never for credentials you care about). MLflow's
`MLFLOW_TRACKING_SERVER_CERT_PATH` / `MLFLOW_TRACKING_INSECURE_TLS` work too.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings

Verify = ssl.SSLContext | bool
"""What httpx's `verify=` takes."""


def verify_from(settings: Settings) -> Verify:
    if settings.tracking_insecure_tls:
        return False
    path = settings.tracking_server_cert_path
    if not path:
        return True
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as e:
        raise InvalidInput(
            f"LEDGERFLOW_TRACKING_SERVER_CERT_PATH {path!r} is not a readable PEM "
            f"certificate file: {getattr(e, 'strerror', None) or e}",
            field="LEDGERFLOW_TRACKING_SERVER_CERT_PATH",
        ) from None
