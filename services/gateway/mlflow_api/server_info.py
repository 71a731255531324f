"""What MLflow 3 clients probe before they talk: the server's version and which artifact
transfers it offers."""

from __future__ import annotations

from typing import Any

from ledgerflow.services.gateway.mlflow_api.endpoints import Call, Endpoints

api = Endpoints("mlflow server info")


@api.get("/server-info", needs="any identity")
def server_info(call: Call) -> dict[str, Any]:
    """Multipart transfers are not offered: the client then uploads each file in one PUT
    and downloads it in one GET through the artifact proxy."""
    return {"multipart_uploads_enabled": False, "multipart_downloads_enabled": False}
