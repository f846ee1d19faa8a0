"""The data contract: read tables, infer a contract, validate data, check leakage, diff versions.

::

    from mlhandoff.contract import CompiledContract, validate_file, diff_contracts

    report = CompiledContract(spec.data_contract).validate(table)   # one request or a batch
    report = validate_file("big.parquet", spec)                      # streamed in chunks
    table, report = CompiledContract(contract).validate_json(records) # a request, every record
    diff = diff_contracts(old.data_contract, new.data_contract)      # diff.breaking
"""

from mlhandoff.contract.diff import Change, ContractDiff, diff_contracts
from mlhandoff.contract.infer import infer_fields
from mlhandoff.contract.leakage import check_training_data, feature_leakage, split_leakage
from mlhandoff.contract.reader import open_batches
from mlhandoff.contract.report import RULES, FieldViolation, Rule, ValidationReport
from mlhandoff.contract.stream import validate_file
from mlhandoff.contract.tables import read_table
from mlhandoff.contract.validate import CompiledContract, ValidationSession

__all__ = [
    "RULES",
    "Change",
    "CompiledContract",
    "ContractDiff",
    "FieldViolation",
    "Rule",
    "ValidationReport",
    "ValidationSession",
    "check_training_data",
    "diff_contracts",
    "feature_leakage",
    "infer_fields",
    "open_batches",
    "read_table",
    "split_leakage",
    "validate_file",
]
