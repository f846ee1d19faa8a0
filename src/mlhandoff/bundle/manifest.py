"""MANIFEST.json: the sha256 of every file in a bundle and one digest over all of them.

Format (version 2; version 1 differs only in what the bundle holds besides the manifest: its
frozen spec also carried what pack computed, which version 2 keeps in ``reports/pack.json``)::

    {
      "format": "mlhandoff-bundle",
      "format_version": 2,
      "name": "...", "version": "...", "created_at": "...", "created_by": "mlhandoff X.Y.Z",
      "digest_algorithm": "sha256",
      "files": {"model/model.skops": {"sha256": "<hex>", "size": 123}, ...},
      "bundle_digest": "sha256:<hex>"
    }

``files`` lists every regular file under the bundle root except ``MANIFEST.json`` itself and
anything under ``signatures/``; any other entry (a link, FIFO, socket or device) fails integrity. ``bundle_digest`` is the sha256 of the lines ``"<sha256>  <path>\\n"`` for all
files sorted by path (the ``sha256sum`` format, so ``sha256sum -c`` can check a bundle by hand).
That is the same subject set an in-toto / DSSE statement (OpenSSF ``model-signing``) signs, so a
signature can later be written to ``signatures/`` without changing this format.

Bumping ``format_version``: any change a version-1 reader would misread (a renamed key, a new
required file, another digest) bumps it; adding optional keys does not. Readers refuse a newer
version with a message to upgrade mlhandoff, and keep reading every older one (tests pin both).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhandoff.errors import BundleError

FORMAT = "mlhandoff-bundle"
FORMAT_VERSION = 2
MANIFEST_NAME = "MANIFEST.json"
SIGNATURES_DIR = "signatures"
_CHUNK = 8 * 1024 * 1024
_MAX_MANIFEST = 64 * 1024 * 1024

Progress = Callable[[int], None]


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """Hex sha256 of a file, read in large chunks (hashlib releases the GIL while hashing)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            if progress:
                progress(n)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Relative POSIX paths of every regular file that the manifest must cover."""
    return scan(root)[0]


def scan(root: Path) -> tuple[list[str], list[str]]:
    """The regular files under ``root`` and every entry that is neither a regular file nor a
    real directory (links to files or directories, FIFOs, sockets, devices).

    Nothing is followed or opened: a link would let a hashed name read unhashed bytes
    elsewhere (or a linked directory shadow bundled code), and opening a FIFO blocks.
    """
    files: list[str] = []
    irregular: list[str] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(root).as_posix()
                if rel == SIGNATURES_DIR and entry.is_dir(follow_symlinks=False):
                    continue  # the signatures folder (outside the manifest by design)
                if entry.is_symlink():
                    irregular.append(rel)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    if rel != MANIFEST_NAME:
                        files.append(rel)
                else:
                    irregular.append(rel)
    return sorted(files), sorted(irregular)


def hash_files(
    root: Path, paths: Iterable[str], progress: Progress | None = None
) -> dict[str, FileEntry]:
    """Hash files in parallel threads: hashing is I/O and C code, so threads scale."""
    paths = list(paths)

    def one(rel: str) -> tuple[str, FileEntry]:
        path = root / rel
        return rel, FileEntry(sha256=sha256_file(path, progress), size=path.stat().st_size)

    workers = min(4, max(1, len(paths)), (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, paths))


def bundle_digest(files: dict[str, FileEntry]) -> str:
    lines = "".join(f"{files[p].sha256}  {p}\n" for p in sorted(files))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def build_manifest(
    root: Path, meta: dict[str, Any], progress: Progress | None = None
) -> dict[str, Any]:
    files = hash_files(root, bundle_files(root), progress)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **meta,
        "digest_algorithm": "sha256",
        "files": {p: {"sha256": e.sha256, "size": e.size} for p, e in sorted(files.items())},
        "bundle_digest": bundle_digest(files),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_manifest(root: Path) -> dict[str, Any]:
    """Parse MANIFEST.json and check it is a bundle manifest this version can read."""
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory (does not exist or is not a directory)")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BundleError(f"{path}: not a regular file; refusing to read it")
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            raise BundleError(f"{path}: larger than {_MAX_MANIFEST // 1024**2} MiB; not a manifest")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; {root} is not an mlhandoff bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise BundleError(f"{path}: nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not an mlhandoff bundle manifest (no 'format: {FORMAT}')")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {version} is newer than this mlhandoff reads ({FORMAT_VERSION}); "
            "upgrade mlhandoff: pip install -U mlhandoff"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("size"), int)
        for v in files.values()
    ):
        raise BundleError(f"{path}: 'files' must map each path to its sha256 and size")
    return manifest


@dataclass
class IntegrityReport:
    """What differs between the files on disk and the manifest."""

    modified: list[str]
    missing: list[str]
    extra: list[str]
    digest_ok: bool
    checked: int
    #: Links, FIFOs, sockets, devices: never followed, opened or trusted.
    irregular: list[str] = field(default_factory=list)
    #: MANIFEST.json itself was edited: the files on disk are the ones its bundle_digest names
    #: (or agree with every entry while the bundle_digest does not), so the manifest is the
    #: file that changed, not the files it lists.
    manifest_edited: bool = False

    @property
    def ok(self) -> bool:
        return (
            not (self.modified or self.missing or self.extra or self.irregular) and self.digest_ok
        )

    def describe(self) -> str:
        if self.ok:
            return f"{self.checked} files match MANIFEST.json"
        if self.manifest_edited:
            return self._describe_edited_manifest()
        parts = []
        for label, names in (
            ("modified", self.modified),
            ("missing", self.missing),
            ("extra", self.extra),
            ("not a regular file (link, FIFO or device)", self.irregular),
        ):
            if names:
                parts.append(
                    f"{label}: {', '.join(names[:5])}"
                    + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
                )
        if not self.digest_ok:
            parts.append("bundle_digest does not match the listed files")
        return "; ".join(parts)

    def _describe_edited_manifest(self) -> str:
        head = f"{MANIFEST_NAME} was changed after pack"
        entries = self.modified + self.missing + self.extra
        if not entries:
            return (
                f"{head}: its bundle_digest does not match the listed files, "
                "which all match the files on disk"
            )
        shown = ", ".join(entries[:5]) + (
            f" (+{len(entries) - 5} more)" if len(entries) > 5 else ""
        )
        return (
            f"{head}: its entries for {shown} disagree with the files, "
            "while the files on disk still match its bundle_digest"
        )


def check_integrity(
    root: Path, manifest: dict[str, Any], progress: Progress | None = None
) -> IntegrityReport:
    """Re-hash every file and compare with the manifest. Nothing is deserialised here."""
    listed: dict[str, dict[str, Any]] = manifest["files"]
    files, irregular = scan(root)
    on_disk = set(files)
    missing = sorted(set(listed) - on_disk)
    extra = sorted(on_disk - set(listed))  # irregular entries are reported as such, not extra
    present = [p for p in listed if p in on_disk]
    sized = [p for p in present if (root / p).stat().st_size == listed[p]["size"]]
    resized = sorted(set(present) - set(sized))
    hashed = hash_files(root, sized, progress)
    modified = resized + sorted(p for p, e in hashed.items() if e.sha256 != listed[p]["sha256"])
    recorded = {p: FileEntry(sha256=v["sha256"], size=v["size"]) for p, v in listed.items()}
    digest_ok = bundle_digest(recorded) == manifest.get("bundle_digest")
    edited = False
    if not irregular and (resized or not digest_ok):
        # Which changed, the files or MANIFEST.json? Hash what was not hashed yet and see
        # whether the files on disk are still the ones the manifest's digests name.
        wanted = resized if digest_ok else [p for p in files if p not in hashed]
        actual = {**hashed, **hash_files(root, wanted, progress)}
        if digest_ok:  # only sizes disagree: edited sizes if every hash is as listed
            edited = not (missing or extra) and all(
                actual[p].sha256 == listed[p]["sha256"] for p in modified
            )
        else:  # all entries match but the digest line does not, or the files match the digest
            edited = not (modified or missing or extra) or bundle_digest(actual) == manifest.get(
                "bundle_digest"
            )
    return IntegrityReport(
        modified=sorted(modified),
        missing=missing,
        extra=extra,
        digest_ok=digest_ok,
        checked=len(listed),
        irregular=irregular,
        manifest_edited=edited,
    )
