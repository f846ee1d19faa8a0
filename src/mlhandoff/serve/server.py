"""Running the app with uvicorn: JSON logs, one or several server processes (``--workers``)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from mlhandoff.serve.app import create_app
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.logs import configure_logging
from mlhandoff.serve.runners import SERVE_CONFIG_ENV


def _encode(config: ServeConfig) -> str:
    data = dataclasses.asdict(config)
    data.pop("token")  # secrets travel by environment variable name only, never serialised
    data.pop("log_pii_key")
    data.pop("admin_token")
    return json.dumps(data, default=str)


def app_from_env() -> Starlette:
    """Factory for uvicorn's server processes: the config travels in an environment variable."""
    data = json.loads(os.environ[SERVE_CONFIG_ENV])
    for key in ("bundle", "fallback", "baseline", "log_dir"):
        if data.get(key):
            data[key] = Path(data[key])
    token_env = data.get("token_env")
    token = os.environ.get(token_env) if token_env else None
    key_env = data.get("log_pii_key_env")
    data["log_pii_key"] = os.environ.get(key_env) if key_env else None
    admin_env = data.get("admin_token_env")
    data["admin_token"] = os.environ.get(admin_env) if admin_env else None
    configure_logging(data.get("log_level", "info"))
    return create_app(ServeConfig(token=token, **data))


#: Seconds an idle keep-alive connection is held open.
KEEP_ALIVE_S = 5


def run(
    config: ServeConfig, *, host: str, port: int, workers: int = 1, log_level: str = "info"
) -> None:
    import uvicorn

    configure_logging(log_level)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # our own structured access log carries the request id
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": KEEP_ALIVE_S,  # an idle connection is closed after this
    }
    if workers > 1:
        config.log_level = log_level
        os.environ[SERVE_CONFIG_ENV] = _encode(config)
        uvicorn.run("mlhandoff.serve.server:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(config), **common)
