"""Which version answers a request, when one server holds a baseline and a candidate.

    canary   the candidate answers ``weight`` % of requests, the baseline the rest
    shadow   the baseline answers every request; the candidate also scores ``weight`` % of
             them, and its answer is only logged

The share is sticky when the candidate's spec names ``rollout.sticky_key``: a request goes to
the candidate when the hash of its (first) record's key value falls under the weight, so one
subject sees one version, and raising the weight only adds subjects. A batch is routed as a
whole, by its first record; a request without the key goes to the baseline. Without a sticky
key each request draws at random.

Rolling back is weight 0. The state (mode, weight, who changed it and when) lives in the
process, or with ``--redis`` in Redis, so that every replica routes alike: a replica re-reads
it at most once a second and adopts what another one set. Each version keeps its own data
contract, answer shaping and model (``ModelRouter``); the service asks this router which
version answers and which shadows.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.contract.diff import diff_contracts
from mlhandoff.contract.outputs import PredictionRows
from mlhandoff.contract.types import arrow_type
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import InputError
from mlhandoff.serve.metrics import ServerMetrics
from mlhandoff.serve.routing import ModelRouter
from mlhandoff.serve.state import StateStore

log = logging.getLogger("mlhandoff.serve")

Mode = Literal["canary", "shadow"]
MODES: tuple[Mode, ...] = ("canary", "shadow")

#: Seconds a replica trusts its copy of a shared (Redis) rollout state.
REFRESH_S = 1.0
#: The shared state's lifetime in Redis (it needs one): far longer than any rollout.
_KEPT_S = 10 * 365 * 86400.0
_STATE_KEY = "rollout-state"


@dataclass
class ServedVersion:
    """One version being served: its bundle, data contract, answer shaping and model."""

    bundle: Bundle
    contract: CompiledContract
    rows: PredictionRows
    router: ModelRouter

    @property
    def version(self) -> str:
        """The spec's version: the ``version`` label of metrics, ``model_version`` in the log."""
        return self.bundle.spec.version

    @property
    def tag(self) -> str:
        return self.bundle.spec.model.version_tag

    def info(self) -> dict[str, str]:
        spec = self.bundle.spec
        return {"name": spec.name, "version": spec.version, "version_tag": spec.model.version_tag}

    def null_outputs(self, rows: int) -> pa.Table:
        """The outputs' columns, all null: what the log records for a request the model failed."""
        fields = self.bundle.outputs.fields
        return pa.table({n: pa.nulls(rows, arrow_type(f)) for n, f in fields.items()})


def served_version(
    bundle: Bundle,
    router: ModelRouter,
    metrics: ServerMetrics,
    max_examples: int,
) -> ServedVersion:
    api = bundle.spec.api
    contract = CompiledContract(
        without_batch_rules(bundle.spec.data_contract), max_examples=max_examples
    )
    rows = PredictionRows(bundle.outputs, api.abstain_below, metrics.abstains.inc)
    return ServedVersion(bundle, contract, rows, router)


def check_pair(candidate: Bundle, baseline: Bundle) -> None:
    """Refuse a baseline that cannot stand beside the candidate: another model, the same
    version (the log could not tell them apart), or a data contract the candidate breaks
    unless the candidate's ``acceptance.upgrade.allow_breaking_contract`` allows it."""
    new, old = candidate.spec, baseline.spec
    if new.name != old.name:
        raise InputError(
            f"the baseline is another model ('{old.name}', the candidate is '{new.name}'): "
            "canary and shadow compare two versions of one model"
        )
    if new.version == old.version:
        raise InputError(
            f"the candidate and the baseline are both version {new.version}: the prediction log "
            "and the metrics tell versions apart by it; bump the candidate's version"
        )
    diff = diff_contracts(old.data_contract, new.data_contract)
    if diff.breaking and not new.acceptance.upgrade.allow_breaking_contract:
        shown = "\n".join(f"  {c.field}: {c.detail}" for c in diff.breaking)
        raise InputError(
            f"the candidate {new.version} breaks the data contract of the baseline "
            f"{old.version} ({len(diff.breaking)} breaking change(s)); requests the baseline "
            f"takes would be refused:\n{shown}\nFix the candidate's contract, or set "
            "acceptance.upgrade.allow_breaking_contract: true in its spec (requests it refuses "
            "are then answered by the baseline and counted)"
        )


@dataclass(frozen=True)
class RolloutState:
    """How traffic is split now, and the last change: who made it and when."""

    mode: Mode
    weight: float
    changed_by: str = "start"
    changed_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: bytes) -> RolloutState:
        data = orjson.loads(raw)
        return cls(data["mode"], float(data["weight"]), data["changed_by"], data["changed_at"])


def bucket(value: Any) -> float:
    """A stable place in [0, 100) for a key value (0.01 steps): the same value always lands in
    the same place, in every replica and every restart."""
    digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


def _first_key(data: Any, key: str) -> Any:
    """The sticky key's value in a parsed body's first record (records or columns)."""
    if isinstance(data, list):
        return data[0].get(key) if data else None
    column = data.get(key)
    return column[0] if isinstance(column, list) and column else None


class VersionRouter:
    """The candidate, and the baseline beside it (canary or shadow); the candidate alone
    otherwise (then every request is its own)."""

    def __init__(
        self,
        candidate: ServedVersion,
        baseline: ServedVersion | None,
        *,
        mode: Mode,
        weight: float,
        metrics: ServerMetrics,
        shared: StateStore | None = None,
    ) -> None:
        self.candidate = candidate
        self.baseline = baseline
        self._sticky = candidate.bundle.spec.rollout.sticky_key
        self._metrics = metrics
        self._shared = shared
        self._state = RolloutState(mode, weight, "start", _now())
        self._read_at = 0.0
        if baseline is not None:
            metrics.rollout_weight.labels(mode).set(weight)

    @property
    def versions(self) -> list[ServedVersion]:
        return [self.candidate] if self.baseline is None else [self.candidate, self.baseline]

    # --- lifecycle and readiness -------------------------------------------------------------

    async def start(self) -> None:
        if self.baseline is not None and self._shared is not None:
            # A replica that starts late adopts the weight the others route by.
            encoded = orjson.dumps(self._state.to_dict())
            await self._shared.set_if_absent(_STATE_KEY, encoded, _KEPT_S)
            await self._refresh(force=True)
        for version in self.versions:
            await version.router.start()

    async def stop(self) -> None:
        for version in self.versions:
            await version.router.stop()

    @property
    def load_error(self) -> str | None:
        errors = [
            f"{v.version}: {v.router.load_error}" if self.baseline else v.router.load_error
            for v in self.versions
            if v.router.load_error
        ]
        return "; ".join(e for e in errors if e) or None

    def readiness(self) -> str:
        """The least ready version's state (``ModelRouter.readiness``)."""
        order = ("failed", "loading", "restarting", "degraded", "ready")
        return min((v.router.readiness() for v in self.versions), key=order.index)

    def check_ready(self) -> None:
        for version in self.versions:
            version.router.check_ready()

    # --- the split ---------------------------------------------------------------------------

    async def state(self) -> RolloutState:
        await self._refresh()
        return self._state

    async def change(self, who: str, weight: float | None, mode: Mode | None) -> RolloutState:
        """Set the weight and/or the mode; shared with every replica when in Redis."""
        old = await self.state()
        new = RolloutState(mode or old.mode, old.weight if weight is None else weight, who, _now())
        if self._shared is not None:
            await self._shared.set(_STATE_KEY, orjson.dumps(new.to_dict()), _KEPT_S)
        self._adopt(new)
        log.warning(
            "rollout changed: %s %g%% -> %s %g%% by %s",
            old.mode,
            old.weight,
            new.mode,
            new.weight,
            who,
            extra={"rollout": new.to_dict(), "previous": old.to_dict()},
        )
        return new

    async def choose(self, data: Any) -> tuple[ServedVersion, ServedVersion | None]:
        """(the version that answers, the version that shadows it or None) for a parsed body."""
        if self.baseline is None:
            return self.candidate, None
        state = await self.state()
        if state.weight <= 0:
            return self.baseline, None
        if self._sticky:
            value = _first_key(data, self._sticky)
            chosen = value is not None and bucket(value) < state.weight
        else:
            chosen = random.random() * 100 < state.weight
        if not chosen:
            return self.baseline, None
        if state.mode == "shadow":
            return self.baseline, self.candidate
        return self.candidate, None

    async def _refresh(self, force: bool = False) -> None:
        if self._shared is None or (not force and time.monotonic() - self._read_at < REFRESH_S):
            return
        self._read_at = time.monotonic()  # one read a second, however many requests wait
        try:
            raw = await self._shared.get(_STATE_KEY)
        except Exception as exc:  # keep routing by the last known state
            log.warning("could not read the shared rollout state: %s", exc)
            return
        if raw is not None:
            self._adopt(RolloutState.from_json(raw))

    def _adopt(self, state: RolloutState) -> None:
        if state != self._state:
            for mode in MODES:
                self._metrics.rollout_weight.labels(mode).set(
                    state.weight if mode == state.mode else 0
                )
        self._state = state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
