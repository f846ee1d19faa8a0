"""The exact environment: the flavor's packages, mlhandoff and the spec's extras, pinned with
everything they require (``env/requirements.txt``), plus Python, platform and seed."""

from __future__ import annotations

import json

from mlhandoff.bundle import environment, layout
from mlhandoff.capability import Capability, PackContext, Step
from mlhandoff.errors import InputError
from mlhandoff.flavors import get_flavor


def capture(ctx: PackContext) -> None:
    assert ctx.model is not None  # the model step ran first
    flavor = get_flavor(ctx.model.flavor)
    env = environment.capture(
        [*flavor.packages(), *ctx.packages, "mlhandoff", *ctx.spec.environment.packages],
        seed=ctx.spec.training.seed,
    )
    wanted = {environment.canonical_name(p): p for p in ctx.spec.environment.packages}
    absent = [wanted[name] for name in env["not_installed"] if name in wanted]
    if absent:
        raise InputError(
            f"environment.packages: {', '.join(absent)} not installed here, so no version can be "
            f"pinned and a retrain on a clean machine would lack it; install it where you pack "
            f"(pip install {' '.join(absent)}) or remove it from the spec"
        )
    (ctx.root / layout.ENVIRONMENT).parent.mkdir(exist_ok=True)
    (ctx.root / layout.ENVIRONMENT).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    lock = None
    if ctx.lock_hashes:
        lock = environment.lock_hashes(env["packages"], wheels=ctx.wheels)
        ctx.measured["hash_lock"] = lock
    (ctx.root / layout.ENV_REQUIREMENTS).write_text(
        environment.requirements_txt(env, lock), encoding="utf-8"
    )
    ctx.measured["environment"] = env


CAPABILITY = Capability(
    "environment",
    steps=(Step("environment", "capturing environment", capture),),
    writes=(layout.ENV_REQUIREMENTS, layout.ENVIRONMENT),
)
