"""The exact environment: the flavor's packages, mlhandoff and the spec's extras, pinned with
everything they require (``env/requirements.txt``), plus Python, platform and seed."""

from __future__ import annotations

import json

from mlhandoff.bundle import environment, layout
from mlhandoff.capability import Capability, PackContext, Step
from mlhandoff.flavors import get_flavor


def capture(ctx: PackContext) -> None:
    assert ctx.model is not None  # the model step ran first
    flavor = get_flavor(ctx.model.flavor)
    env = environment.capture(
        [*flavor.packages(), "mlhandoff", *ctx.spec.environment.packages],
        seed=ctx.spec.training.seed,
    )
    (ctx.root / layout.ENVIRONMENT).parent.mkdir(exist_ok=True)
    (ctx.root / layout.ENVIRONMENT).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    (ctx.root / layout.ENV_REQUIREMENTS).write_text(
        environment.requirements_txt(env), encoding="utf-8"
    )
    ctx.measured["environment"] = env


CAPABILITY = Capability(
    "environment", steps=(Step("environment", "capturing environment", capture),)
)
