"""The handoff spec: models of ``handoff.yaml``, loading with located errors, JSON Schema."""

from mlhandoff.spec.loader import dump_spec, load_spec, parse_spec, spec_json_schema
from mlhandoff.spec.models import (
    SPEC_VERSION,
    DataContract,
    FieldSpec,
    HandoffSpec,
    OutputContract,
    default_output_contract,
    is_todo,
)

__all__ = [
    "SPEC_VERSION",
    "DataContract",
    "FieldSpec",
    "HandoffSpec",
    "OutputContract",
    "default_output_contract",
    "dump_spec",
    "is_todo",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
]
