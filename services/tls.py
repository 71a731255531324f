"""TLS for Ledgerflow's servers: `--ssl-keyfile` / `--ssl-certfile` on `ledgerflow server`,
`gateway` and `serve`. The same PEM pair serves REST (uvicorn's TLS) and gRPC
(`grpc.ssl_server_credentials`), so clients trust one certificate for both ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerflow.events.errors import InvalidInput


@dataclass(frozen=True)
class Tls:
    keyfile: str
    certfile: str

    @classmethod
    def of(cls, keyfile: str | Path | None, certfile: str | Path | None) -> Tls | None:
        """The pair from the flags (None for neither); InvalidInput naming the flag when only
        one is given or a file cannot be read."""
        if keyfile is None and certfile is None:
            return None
        if keyfile is None or certfile is None:
            missing = "--ssl-keyfile" if keyfile is None else "--ssl-certfile"
            raise InvalidInput(
                f"TLS needs both --ssl-keyfile and --ssl-certfile; {missing} is missing",
                field=missing,
            )
        for flag, path in (("--ssl-keyfile", keyfile), ("--ssl-certfile", certfile)):
            try:
                Path(path).read_bytes()
            except OSError as e:
                raise InvalidInput(
                    f"{flag} {str(path)!r} cannot be read: {e.strerror}", field=flag
                ) from None
        return cls(str(keyfile), str(certfile))

    def uvicorn_options(self) -> dict[str, Any]:
        return {"ssl_keyfile": self.keyfile, "ssl_certfile": self.certfile}

    def grpc_credentials(self) -> Any:
        import grpc

        key, chain = Path(self.keyfile).read_bytes(), Path(self.certfile).read_bytes()
        return grpc.ssl_server_credentials([(key, chain)])


def scheme(tls: Tls | None) -> str:
    return "http" if tls is None else "https"
