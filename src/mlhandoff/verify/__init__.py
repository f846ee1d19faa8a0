"""``mlhandoff verify``: integrity, then the registered checks and the checklist they fill in."""

from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.verify.verify import verify

__all__ = ["CheckResult", "VerifyReport", "verify"]
