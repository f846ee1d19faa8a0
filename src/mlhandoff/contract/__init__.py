"""The data contract: read tables, infer a contract from a sample, validate data against it."""

from mlhandoff.contract.infer import infer_fields
from mlhandoff.contract.tables import read_table
from mlhandoff.contract.validate import CompiledContract, ValidationReport, ValidationSession

__all__ = [
    "CompiledContract",
    "ValidationReport",
    "ValidationSession",
    "infer_fields",
    "read_table",
]
