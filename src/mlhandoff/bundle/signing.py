"""Signatures over a bundle, in the OpenSSF model-signing format (``model-signing`` 1.x).

``signatures/model.sig`` is a Sigstore bundle (JSON) holding a DSSE envelope around an in-toto
statement that lists the sha256 of every file of the bundle, ``MANIFEST.json`` included and
``signatures/`` excluded, signed with an EC key (P-256 by default). It is written by the
``model_signing`` library, so the ``model_signing`` CLI verifies it::

    model_signing verify key BUNDLE --signature BUNDLE/signatures/model.sig \\
        --public_key KEY.pub --ignore-paths BUNDLE/signatures

and a signature that CLI wrote (``model_signing sign key BUNDLE --private_key KEY
--signature BUNDLE/signatures/model.sig --ignore-paths BUNDLE/signatures``) verifies here.

Verifying here does not hash the bundle again: integrity has already compared every file with
``MANIFEST.json``, so the signed digests are compared with the manifest's (and with the hash of
the manifest itself). The signature must cover exactly the bundle's files: a signature that
leaves a file out (``--ignore-paths model``) does not vouch for the bundle.

Sign-offs (:mod:`mlhandoff.bundle.signoffs`) use the same envelope, so :func:`read_envelope`
and :func:`verify_envelope` serve both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlhandoff.bundle.layout import SIGNATURE
from mlhandoff.bundle.manifest import (
    MANIFEST_NAME,
    SIGNATURES_DIR,
    FileEntry,
    bundle_digest,
    check_integrity,
    read_manifest,
    sha256_file,
)
from mlhandoff.errors import InputError, IntegrityError, SignatureError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
#: Public key files a keyring directory may hold.
PUBLIC_KEY_SUFFIXES = (".pub", ".pem")
_MAX_SIGNATURE = 16 * 1024 * 1024
_CURVES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A verifying key and where it came from (shown in verify's detail)."""

    name: str
    key: ec.EllipticCurvePublicKey

    @property
    def id(self) -> str:
        """model-signing's key hint: the sha256 of the PEM SubjectPublicKeyInfo."""
        return key_id(self.key)


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def generate_key(private_path: str | Path, *, force: bool = False) -> Path:
    """Write a new EC P-256 private key (PEM, mode 0600) and its public key beside it (``.pub``).

    Returns the public key's path. Existing files are kept unless ``force``.
    """
    private_path = Path(private_path)
    public_path = private_path.with_suffix(".pub")
    if private_path == public_path:
        raise InputError(f"{private_path}: the private key must not end in .pub")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise InputError(f"{path} already exists; pass --force to replace the key pair")
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_path


def load_private_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InputError(f"{path}: private key not found") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(
            f"{path}: not an unencrypted PEM private key ({exc}); make one with mlhandoff keygen"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise InputError(f"{path}: not an EC P-256/P-384/P-521 key; make one with mlhandoff keygen")
    return key


def load_public_key(path: str | Path, name: str | None = None) -> PublicKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: public key not found") from None
    if b"PRIVATE KEY" in data:
        raise InputError(f"{path}: holds a private key; give the public key (the .pub file)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InputError(f"{path}: not an EC P-256/P-384/P-521 public key")
    return PublicKey(name or path.name, key)


def load_keyring(directory: str | Path, label: str | None = None) -> list[PublicKey]:
    """Every public key (``*.pub``, ``*.pem``) in a directory; private keys there are refused."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: keyring not found (a directory of .pub files)")
    prefix = f"{label}/" if label else ""
    return [
        load_public_key(path, prefix + path.name)
        for path in sorted(directory.iterdir())
        if path.suffix in PUBLIC_KEY_SUFFIXES and path.is_file() and not path.is_symlink()
    ]


@dataclass(frozen=True)
class TrustAnchors:
    """The keys whoever opens a bundle trusts: given from outside it, never read from it.

    ``public_keys`` (``--public-key``) check the bundle's signature; ``keyring`` (``--keyring``)
    checks sign-offs, and the signature when no public key is given. ``keyring`` None means
    no keyring was given: checks fall back to the keys the bundle carries (``keys/``) and say so.
    """

    public_keys: tuple[PublicKey, ...] = ()
    keyring: tuple[PublicKey, ...] | None = None

    @classmethod
    def load(
        cls, public_keys: Sequence[str | Path] = (), keyring: str | Path | None = None
    ) -> TrustAnchors:
        return cls(
            tuple(load_public_key(p) for p in public_keys),
            None if keyring is None else tuple(load_keyring(keyring)),
        )


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope read from a Sigstore bundle file (signature or sign-off)."""

    path: Path
    #: How messages name the file (its path inside the bundle).
    name: str
    payload: bytes
    payload_type: str
    signature: bytes
    hint: str

    def statement(self) -> dict[str, Any]:
        try:
            statement = json.loads(self.payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SignatureError(f"{self.name}: the signed statement is not JSON") from exc
        if not isinstance(statement, dict) or statement.get("_type") != IN_TOTO_STATEMENT:
            raise SignatureError(f"{self.name}: the signed payload is not an in-toto statement")
        return statement


def read_envelope(path: Path, name: str) -> Envelope:
    """Parse a signature file (``name``: its path in the bundle, for messages); a truncated or
    hand-edited one is a :class:`SignatureError`."""
    if path.is_symlink() or not path.is_file():
        raise SignatureError(f"{name}: not a regular file")
    if path.stat().st_size > _MAX_SIGNATURE:
        raise SignatureError(f"{name}: larger than a signature can be")
    try:
        data = json.loads(path.read_bytes())
        envelope = data["dsseEnvelope"]
        (sig,) = envelope["signatures"]
        hint = (data.get("verificationMaterial") or {}).get("publicKey", {}).get("hint") or ""
        return Envelope(
            path=path,
            name=name,
            payload=base64.b64decode(envelope["payload"], validate=True),
            payload_type=str(envelope["payloadType"]),
            signature=base64.b64decode(sig["sig"], validate=True),
            hint=str(hint),
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SignatureError(
            f"{name}: not a readable signature (truncated or corrupt JSON: {exc})"
        ) from exc
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise SignatureError(
            f"{name}: not a Sigstore bundle with one DSSE signature ({type(exc).__name__}: {exc})"
        ) from exc


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature is computed over."""
    return b"DSSEv1 %d %s %d %s" % (
        len(payload_type.encode()),
        payload_type.encode(),
        len(payload),
        payload,
    )


def sign_envelope(payload: bytes, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A Sigstore bundle (as JSON data) with ``payload`` signed in a DSSE envelope."""
    digest = _CURVES[key.curve.name]()
    sig = key.sign(pae(IN_TOTO_PAYLOAD, payload), ec.ECDSA(digest))
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key_id(key.public_key())},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO_PAYLOAD,
            "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
        },
    }


def signer_of(envelope: Envelope, keys: Sequence[PublicKey], where: str) -> PublicKey:
    """The key that made ``envelope``'s signature, among ``keys``; else a SignatureError."""
    name = envelope.name
    if envelope.payload_type != IN_TOTO_PAYLOAD:
        raise SignatureError(f"{name}: payload type {envelope.payload_type!r} is not in-toto")
    if not keys:
        raise SignatureError(f"{name}: no public key to check it with ({where})")
    candidates = [k for k in keys if k.id == envelope.hint] if envelope.hint else list(keys)
    if not candidates:
        raise SignatureError(
            f"{name}: signed by a key that is not in {where} (key id {envelope.hint[:16]}…)"
        )
    for key in candidates:
        try:
            key.key.verify(
                envelope.signature,
                pae(envelope.payload_type, envelope.payload),
                ec.ECDSA(_CURVES[key.key.curve.name]()),
            )
            return key
        except InvalidSignature:
            continue
    raise SignatureError(
        f"{name}: the signature does not verify with {candidates[0].name} "
        "(forged, or its statement was edited after signing)"
    )


@dataclass(frozen=True)
class BundleSignature:
    """A verified ``signatures/model.sig``: who signed, and over how many files."""

    signer: PublicKey
    files: int


def verify_bundle_signature(
    root: Path, manifest: dict[str, Any], keys: Sequence[PublicKey], where: str
) -> BundleSignature:
    """Check ``signatures/model.sig`` against the bundle's manifest (whose files integrity has
    already checked) and ``keys``. Raises :class:`SignatureError` saying what is wrong."""
    path = root / SIGNATURE
    if not path.exists():
        raise SignatureError(f"{SIGNATURE}: the bundle is not signed (mlhandoff sign)")
    envelope = read_envelope(path, SIGNATURE)
    signer = signer_of(envelope, keys, where)
    signed = _signed_digests(envelope)
    files: dict[str, str] = {p: e["sha256"] for p, e in manifest["files"].items()}
    files[MANIFEST_NAME] = sha256_file(root / MANIFEST_NAME)
    changed = sorted(p for p in signed.keys() & files.keys() if signed[p] != files[p])
    unsigned = sorted(files.keys() - signed.keys())
    gone = sorted(signed.keys() - files.keys())
    if changed or unsigned or gone:
        raise SignatureError(_mismatch(signed, manifest, changed, unsigned, gone))
    return BundleSignature(signer, len(signed))


def _signed_digests(envelope: Envelope) -> dict[str, str]:
    statement = envelope.statement()
    name = envelope.name
    if statement.get("predicateType") != MODEL_SIGNING_PREDICATE:
        raise SignatureError(f"{name}: not a model-signing statement")
    try:
        predicate = statement["predicate"]
        serialization_ = predicate["serialization"]
        resources = predicate["resources"]
        if serialization_.get("method") != "files" or serialization_.get("hash_type") != "sha256":
            raise SignatureError(
                f"{name}: signed with method {serialization_.get('method')!r} and hash "
                f"{serialization_.get('hash_type')!r}; mlhandoff checks sha256 per file "
                "(model_signing's default)"
            )
        return {str(r["name"]): str(r["digest"]) for r in resources}
    except (KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{name}: the statement lists no files ({exc})") from exc


def _mismatch(
    signed: dict[str, str],
    manifest: dict[str, Any],
    changed: list[str],
    unsigned: list[str],
    gone: list[str],
) -> str:
    entries = {p: FileEntry(sha256=d, size=0) for p, d in signed.items() if p != MANIFEST_NAME}
    parts = [
        f"{label}: {_names(names)}"
        for label, names in (
            ("changed since signing", changed),
            ("not covered by the signature", unsigned),
            ("signed but not in the bundle", gone),
        )
        if names
    ]
    return (
        f"{SIGNATURE}: the signature no longer matches this bundle (it signs bundle digest "
        f"{bundle_digest(entries)}, this bundle is {manifest.get('bundle_digest')}): "
        + "; ".join(parts)
    )


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def checked_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a bundle whose files all match it: only such a bundle is signed."""
    manifest = read_manifest(root)
    integrity = check_integrity(root, manifest)
    if not integrity.ok:
        raise IntegrityError(
            f"{root}: refusing to sign a bundle that does not match MANIFEST.json: "
            f"{integrity.describe()}"
        )
    return manifest


def sign_bundle(root: str | Path, private_key: str | Path) -> BundleSignature:
    """Sign the bundle at ``root`` with ``model_signing`` (EC key), into ``signatures/model.sig``.

    The bundle must pass integrity first; the signature is checked against the manifest right
    after it is written, so a file changed while signing is caught here, not by the receiver.
    """
    from model_signing import hashing, signing  # heavy (sigstore): only when signing

    root = Path(root)
    key = load_private_key(private_key)
    manifest = checked_manifest(root)
    (root / SIGNATURES_DIR).mkdir(exist_ok=True)
    config = hashing.Config().set_ignored_paths(paths=[SIGNATURES_DIR], ignore_git_paths=True)
    signing.Config().use_elliptic_key_signer(private_key=Path(private_key)).set_hashing_config(
        config
    ).sign(root, root / SIGNATURE)
    public = PublicKey(Path(private_key).with_suffix(".pub").name, key.public_key())
    return verify_bundle_signature(root, manifest, [public], "the signing key")
