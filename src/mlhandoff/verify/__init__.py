"""``mlhandoff verify``: the checks it runs and the checklist they fill in."""

from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.verify.verify import CHECKS, Check, verify

__all__ = ["CHECKS", "Check", "CheckResult", "VerifyReport", "verify"]
