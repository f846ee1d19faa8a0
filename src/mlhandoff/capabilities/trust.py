"""Trust: who made the bundle and who approved it, checked by signature.

Pack copies the public keys of ``security.keyring`` into ``keys/``. Verify checks
``signatures/model.sig`` (OpenSSF model signing, :mod:`mlhandoff.bundle.signing`) with the keys
the verifier gives (``--public-key``, ``--keyring``), else with the bundle's own ``keys/``, and
says which: a key the bundle carries only vouches for a bundle whose signature someone checked
with a key of their own.
"""

from __future__ import annotations

import shutil

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.bundle.signing import PublicKey, load_keyring, verify_bundle_signature
from mlhandoff.bundle.signoffs import ROLE_NAMES, read_signoffs
from mlhandoff.capabilities.files import resolve_input
from mlhandoff.capability import Capability, Check, HandoffView, Outcome, PackContext, Step
from mlhandoff.checks import Status
from mlhandoff.errors import InputError, SignatureError


def copy_keyring(ctx: PackContext) -> None:
    rel = ctx.spec.security.keyring
    if rel is None:
        return
    source = resolve_input(ctx.base, rel, "security.keyring", allow_outside=ctx.allow_outside)
    if not source.is_dir():
        raise InputError(f"security.keyring: {rel} is not a directory of public keys (*.pub)")
    keys = load_keyring(source)  # refuses private keys and unreadable ones, naming the file
    if not keys:
        raise InputError(
            f"security.keyring: {rel} holds no public key (*.pub); "
            "make one with mlhandoff keygen KEYFILE and put the .pub file there"
        )
    target = ctx.root / layout.KEYS_DIR
    target.mkdir()
    for key in keys:
        shutil.copyfile(source / key.name, target / key.name)
    ctx.measured["keyring"] = [k.name for k in keys]


def bundle_keys(bundle: Bundle) -> list[PublicKey]:
    """The keys the bundle carries (``keys/``, covered by its manifest)."""
    if not any(f.startswith(layout.KEYS_DIR + "/") for f in bundle.files):
        return []
    return load_keyring(bundle.root / layout.KEYS_DIR, layout.KEYS_DIR)


def _signature_keys(bundle: Bundle) -> tuple[list[PublicKey], str, bool]:
    """The keys to check the signature with, where they come from, and whether the verifier
    gave them (True) or the bundle carries them (False)."""
    anchors = bundle.anchors
    if anchors.public_keys:
        return list(anchors.public_keys), "the --public-key given", True
    if anchors.keyring is not None:
        return list(anchors.keyring), "the --keyring given", True
    return bundle_keys(bundle), "the bundle's own keys/", False


def signature(bundle: Bundle) -> Outcome:
    required = bundle.spec.security.require_signature
    if not (bundle.root / layout.SIGNATURE).exists():
        if required:
            return "missing", (
                "not signed, and security.require_signature is set: mlhandoff sign BUNDLE --key KEY"
            )
        return "skipped", "not signed (mlhandoff sign BUNDLE --key KEY)"
    keys, where, given = _signature_keys(bundle)
    if not keys:
        return ("fail" if required else "warn"), (
            "signed, but there is no public key to check it with: pass --public-key PUB"
        )
    try:
        signed = verify_bundle_signature(bundle.root, bundle.manifest, keys, where)
    except SignatureError as exc:
        return "fail", str(exc)
    detail = f"{signed.files} files signed by {signed.signer.name} ({where})"
    if not given:
        caveat = "a key the bundle carries proves nothing by itself: pass --public-key PUB"
        return "warn", f"{detail}; {caveat}"
    return "pass", detail


def signoffs(bundle: Bundle) -> Outcome:
    """Every required role signed off on this bundle digest, with a key of the keyring."""
    spec = bundle.spec
    if bundle.anchors.keyring is not None:
        keys, where = list(bundle.anchors.keyring), "the --keyring given"
    else:
        keys, where = bundle_keys(bundle), "the bundle's keys/ (security.keyring)"
    records, problems = read_signoffs(bundle.root, keys, where)
    current = [r for r in records if r.digest == bundle.digest]
    stale = [r for r in records if r.digest != bundle.digest]
    signed = {r.role for r in current}
    missing = [role for role in spec.security.signoff_roles if role not in signed]
    parts = []
    if current:
        parts.append("signed: " + ", ".join(r.describe() for r in current))
    if missing:
        parts.append("no signed sign-off from " + ", ".join(ROLE_NAMES[r] for r in missing))
    declared = [s for s in spec.signoffs if s.role not in signed]
    if declared:
        parts.append(
            "declared, not signed: "
            + ", ".join(f"{ROLE_NAMES[s.role]} {s.name} {s.date}" for s in declared)
        )
    if stale:
        parts.append(
            "stale (signed an earlier bundle digest): "
            + ", ".join(f"{r.describe()} on {r.digest[:19]}…" for r in stale)
        )
    parts += problems
    if not keys and (missing or problems):
        parts.append("no keyring to check sign-offs with: set security.keyring or pass --keyring")
    if missing:
        parts.append("sign with: mlhandoff signoff BUNDLE --role ROLE --name NAME --key KEY")
    status: Status = "fail" if problems else "missing" if missing else "pass"
    if status == "pass" and bundle.anchors.keyring is None:
        parts.append("keys from the bundle's own keys/: pass --keyring to use yours")
    return status, "; ".join(parts) or "no sign-off required (security.signoff_roles is empty)"


def readme(view: HandoffView) -> str:
    """How the receiving engineer checks who made and who approved this bundle."""
    security = view.spec.security
    roles = ", ".join(ROLE_NAMES[r] for r in security.signoff_roles)
    keys = sorted(f for f in view.files if f.startswith(layout.KEYS_DIR + "/"))
    lines = [
        "## Trust",
        "",
        f"verify requires signed sign-offs from {roles} for this bundle's digest"
        + (f", checked with the keys in `{layout.KEYS_DIR}/` ({len(keys)})" if keys else "")
        + (
            "; the bundle must be signed (`security.require_signature`)."
            if security.require_signature
            else "."
        ),
        "",
        "```bash",
        "mlhandoff verify . --public-key SIGNER.pub --keyring YOUR_KEYRING/",
        "```",
    ]
    return "\n".join(lines)


CAPABILITY = Capability(
    "trust",
    steps=(Step("keyring", "copying the keyring's public keys", copy_keyring),),
    checks=(
        Check("signature", "Bundle signed (OpenSSF model signing)", signature),
        Check("signoffs", "Sign-offs from PM, DS and Eng, signed for this bundle", signoffs),
    ),
    readme=readme,
)
