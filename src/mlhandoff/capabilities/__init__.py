"""The built-in capabilities, registered in the order pack runs their steps and the checklist
lists their lines. A new capability is a module here (or anywhere) plus one line below."""

from mlhandoff.capabilities import (
    acceptance,
    agreements,
    bundle_tests,
    compile,
    environment,
    golden,
    leakage,
    model,
    monitoring,
    privacy,
    rollout,
    training,
    trust,
)
from mlhandoff.capability import register

BUILTIN = (
    trust.CAPABILITY,  # its checks run first: a signature is checked before any model loads
    model.CAPABILITY,  # writes and loads the model: later steps use it
    golden.CAPABILITY,
    acceptance.CAPABILITY,
    privacy.CAPABILITY,  # after golden and acceptance wrote the data it scans and trims
    compile.CAPABILITY,  # proves the compiled form on the golden set and the eval sample
    training.CAPABILITY,  # hashes training.data, refusing paths outside the spec's directory
    environment.CAPABILITY,
    bundle_tests.CAPABILITY,
    agreements.CAPABILITY,
    monitoring.CAPABILITY,  # profiles the eval sample the acceptance step wrote
    leakage.CAPABILITY,  # reads training.data after training checked where it is
    rollout.CAPABILITY,
)
for _capability in BUILTIN:
    register(_capability)

__all__ = ["BUILTIN"]
