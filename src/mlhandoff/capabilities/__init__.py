"""The built-in capabilities, registered in the order pack runs their steps and the checklist
lists their lines. A new capability is a module here (or anywhere) plus one line below."""

from mlhandoff.capabilities import (
    acceptance,
    agreements,
    bundle_tests,
    environment,
    golden,
    leakage,
    model,
    monitoring,
    training,
)
from mlhandoff.capability import register

BUILTIN = (
    model.CAPABILITY,  # writes and loads the model: later steps use it
    golden.CAPABILITY,
    acceptance.CAPABILITY,
    training.CAPABILITY,  # hashes training.data, refusing paths outside the spec's directory
    environment.CAPABILITY,
    bundle_tests.CAPABILITY,
    agreements.CAPABILITY,
    monitoring.CAPABILITY,  # profiles the eval sample the acceptance step wrote
    leakage.CAPABILITY,  # reads training.data after training checked where it is
)
for _capability in BUILTIN:
    register(_capability)

__all__ = ["BUILTIN"]
