"""`ledgerflow` with grpcio's asyncio server serving `--grpc-port`, as `ledgerflow serve` did
before its own HTTP/2 front (services/serving/grpc_front.py): what bench/serving.py --fronts
measures the front against.

    python bench/grpc_front_grpcio.py --tracking-uri DIR serve -m MODEL --grpc-port 8001 ...
"""

from __future__ import annotations

import sys
from typing import Any

from ledgerflow.services.tls import Tls


async def start_grpcio_server(
    repository: Any,
    host: str,
    port: int,
    *,
    servicer: Any = None,
    auth: Any = None,
    tls: Tls | None = None,
) -> Any:
    """A started grpc.aio server with the product's servicer, configured as the product's was
    (64 MiB messages); `.port` and `stop(grace)` as the front's."""
    import grpc

    from ledgerflow.services.serving import grpc_service
    from ledgerflow.services.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        servicer or grpc_service.InferenceServicer(repository, auth), server
    )
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls.grpc_credentials())
    if bound == 0:
        raise OSError(f"gRPC could not listen on {host}:{port}")
    await server.start()
    server.port = bound
    return server


def main() -> None:
    from ledgerflow.services.serving import grpc_service

    # The server looks the function up when it starts gRPC: a benchmark's switch, nothing more.
    grpc_service.start_grpc_server = start_grpcio_server  # type: ignore[assignment]
    from ledgerflow.cli import main as cli

    cli()


if __name__ == "__main__":
    del sys.path[0]  # bench/, whose module names (models, tracking, ...) would shadow others'
    main()
