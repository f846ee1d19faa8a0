"""How to serve: the options of ``mlhandoff serve``; what the API promises comes from the spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlhandoff.serve.predlog import PiiMode


@dataclass
class ServeConfig:
    """How to serve; what the API promises comes from the bundle's spec."""

    bundle: Path
    fallback: Path | None = None
    token: str | None = None
    redis_url: str | None = None
    log_dir: Path | None = None
    log_sample_rate: float = 1.0
    log_pii: PiiMode = "redact"
    #: Secret HMAC key for ``log_pii="hash"``; public values (the bundle digest) would let anyone
    #: with the log test guesses, so hashing is refused without one.
    log_pii_key: str | None = None
    batch_max_rows: int = 256
    batch_max_wait_ms: float = 0.0
    model_threads: int | None = 1
    #: Run the model in a model process (True) or in a thread of the server (False).
    model_process: bool = True
    #: Serve the bundle's compiled model when it has one (False: the model itself).
    compiled: bool = True
    #: Kill and restart a model process whose call runs this long (default: 10x the time
    #: budget, >= 5 s).
    model_kill_after_s: float | None = None
    #: A request body must arrive in full within this many seconds (else 408).
    body_timeout_s: float = 10.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    #: For server processes (``--workers``): the environment variable the token is read from
    #: (never the token itself).
    token_env: str | None = None
    log_pii_key_env: str | None = None
    log_level: str = "info"
    #: Serve only a bundle whose signatures/model.sig verifies with one of these public keys
    #: (checked before anything in the bundle is deserialised; the fallback too).
    public_keys: tuple[Path, ...] = ()
