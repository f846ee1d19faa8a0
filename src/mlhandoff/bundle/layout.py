"""Where each file lives inside a bundle (see DESIGN.md, "Bundle layout")."""

from pathlib import Path

SPEC = "handoff.yaml"
MODEL_DIR = "model"
#: The compiled form of the model (when pack proved it equivalent), beside the model itself.
COMPILED_DIR = "model/compiled"
CODE_DIR = "code"
#: Public keys the spec's security.keyring named, copied at pack (sign-offs are checked with them).
KEYS_DIR = "keys"
SIGNATURE = "signatures/model.sig"
SIGNOFFS_DIR = "signatures/signoffs"
ENV_REQUIREMENTS = "env/requirements.txt"
ENVIRONMENT = "env/environment.json"
GOLDEN_INPUTS = "data/golden_inputs.parquet"
GOLDEN_OUTPUTS = "data/golden_outputs.parquet"
EVAL_SAMPLE = "data/eval_sample.parquet"
REFERENCE_PROFILE = "data/reference_profile.json"
PACK_RECORD = "reports/pack.json"
ACCEPTANCE_REPORT = "reports/acceptance.json"
LEAKAGE_REPORT = "reports/leakage.json"
PII_REPORT = "reports/pii.json"
COMPILE_REPORT = "reports/compile.json"
DOCS_DIR = "docs"
README = "docs/README.md"
MODEL_CARD = "docs/MODEL_CARD.md"
OPENAPI = "docs/openapi.json"
ALERT_RULES = "docs/alerts.yaml"
ALERT_TESTS = "docs/alerts.test.yaml"
DASHBOARD = "docs/dashboard.json"
RUNBOOK = "docs/RUNBOOK.md"


REPRO_RECORD_SUFFIX = ".repro.json"


def repro_record(bundle_root: Path) -> Path:
    """Where ``mlhandoff repro`` records its result: beside the bundle (bundles are immutable)."""
    root = Path(bundle_root).resolve()
    return root.with_name(root.name + REPRO_RECORD_SUFFIX)


MONITOR_RECORD_SUFFIX = ".monitor.json"


def monitor_record(bundle_root: Path) -> Path:
    """Where ``mlhandoff monitor`` records what its last run computed, beside the bundle."""
    root = Path(bundle_root).resolve()
    return root.with_name(root.name + MONITOR_RECORD_SUFFIX)
