"""Signed sign-offs: who approved which bundle, in what role, when, with what comment.

Each sign-off is a file of its own under ``signatures/signoffs/`` (outside the manifest, so
signing off never changes the bundle digest), in the same Sigstore-bundle / DSSE envelope as the
bundle signature, around an in-toto statement whose subject is the bundle digest::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "risky-transactions-1.0.0", "digest": {"sha256": "<bundle digest>"}}],
     "predicateType": "https://mlhandoff/signoff/v1",
     "predicate": {"role": "ds", "name": "Dana Scientist", "signed_at": "2026-11-20T10:00:00Z",
                   "comment": "..."}}

A sign-off approves exactly one bundle digest: after a re-pack it is stale, and says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from mlhandoff.bundle.layout import SIGNOFFS_DIR
from mlhandoff.bundle.signing import (
    IN_TOTO_STATEMENT,
    PublicKey,
    checked_manifest,
    key_id,
    load_private_key,
    read_envelope,
    sign_envelope,
    signer_of,
)
from mlhandoff.errors import InputError, SignatureError
from mlhandoff.spec.models import ROLES, Role

PREDICATE = "https://mlhandoff/signoff/v1"
ROLE_NAMES: dict[str, str] = {"pm": "PM", "ds": "DS", "eng": "Eng"}
_MAX_TEXT = 2000


@dataclass(frozen=True)
class SignOffRecord:
    """A sign-off whose signature verified with ``signer``."""

    file: str
    role: Role
    name: str
    signed_at: str
    bundle: str
    digest: str
    comment: str | None
    signer: PublicKey

    def describe(self) -> str:
        return f"{ROLE_NAMES[self.role]} {self.name} {self.signed_at[:10]} ({self.signer.name})"


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InputError(f"--role '{role}' is not a sign-off role; use one of: {', '.join(ROLES)}")
    return cast(Role, role)


def sign_off(
    root: str | Path,
    *,
    role: str,
    name: str,
    key: str | Path,
    comment: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Append a signed sign-off for the bundle's current digest; returns the new file.

    The bundle must match its manifest: nobody approves files that differ from the digest.
    """
    root = Path(root)
    checked = check_role(role)
    if not name.strip():
        raise InputError("--name is empty; a sign-off names who gives it")
    for label, text in (("--name", name), ("--comment", comment or "")):
        if len(text) > _MAX_TEXT:
            raise InputError(f"{label} is longer than {_MAX_TEXT} characters")
    private = load_private_key(key)
    manifest = checked_manifest(root)
    at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statement = {
        "_type": IN_TOTO_STATEMENT,
        "subject": [
            {
                "name": f"{manifest.get('name')}-{manifest.get('version')}",
                "digest": {"sha256": str(manifest["bundle_digest"]).removeprefix("sha256:")},
            }
        ],
        "predicateType": PREDICATE,
        "predicate": {"role": checked, "name": name.strip(), "signed_at": at, "comment": comment},
    }
    envelope = sign_envelope(json.dumps(statement, sort_keys=True).encode(), private)
    directory = root / SIGNOFFS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{checked}-{at.replace(':', '').replace('-', '')}-{key_id(private.public_key())[:8]}"
    for n in range(1000):
        path = directory / (f"{stem}.json" if n == 0 else f"{stem}-{n}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(envelope, indent=2) + "\n")
        return path
    raise InputError(f"{directory}: too many sign-offs named {stem}")


def read_signoffs(
    root: Path, keys: list[PublicKey], where: str
) -> tuple[list[SignOffRecord], list[str]]:
    """Every sign-off under ``signatures/signoffs/`` whose signature verifies with ``keys``, and
    one line per file that does not (unreadable, forged, a key not in ``where``)."""
    directory = root / SIGNOFFS_DIR
    if not directory.is_dir():
        return [], []
    records, problems = [], []
    for path in sorted(directory.iterdir()):
        rel = f"{SIGNOFFS_DIR}/{path.name}"
        try:
            envelope = read_envelope(path, rel)
            signer = signer_of(envelope, keys, where)
            records.append(_record(rel, envelope.statement(), signer))
        except SignatureError as exc:
            problems.append(str(exc))
    return records, problems


def _record(rel: str, statement: dict[str, Any], signer: PublicKey) -> SignOffRecord:
    if statement.get("predicateType") != PREDICATE:
        raise SignatureError(f"{rel}: not an mlhandoff sign-off")
    try:
        (subject,) = statement["subject"]
        predicate = statement["predicate"]
        role = str(predicate["role"])
        if role not in ROLES:
            raise SignatureError(f"{rel}: signed for an unknown role '{role}'")
        return SignOffRecord(
            file=rel,
            role=cast(Role, role),
            name=str(predicate["name"]),
            signed_at=str(predicate["signed_at"]),
            bundle=str(subject["name"]),
            digest="sha256:" + str(subject["digest"]["sha256"]),
            comment=predicate.get("comment"),
            signer=signer,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SignatureError(f"{rel}: the sign-off statement is incomplete ({exc})") from exc
