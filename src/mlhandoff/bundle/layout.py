"""Where each file lives inside a bundle (see DESIGN.md, "Bundle layout")."""

from pathlib import Path

SPEC = "handoff.yaml"
MODEL_DIR = "model"
CODE_DIR = "code"
ENV_REQUIREMENTS = "env/requirements.txt"
ENVIRONMENT = "env/environment.json"
GOLDEN_INPUTS = "data/golden_inputs.parquet"
GOLDEN_OUTPUTS = "data/golden_outputs.parquet"
EVAL_SAMPLE = "data/eval_sample.parquet"
REFERENCE_PROFILE = "data/reference_profile.json"
PACK_RECORD = "reports/pack.json"
ACCEPTANCE_REPORT = "reports/acceptance.json"
LEAKAGE_REPORT = "reports/leakage.json"
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
