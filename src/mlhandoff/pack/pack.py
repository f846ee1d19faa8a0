"""Packing a spec, a model and a sample into an immutable, content-addressed bundle.

Every registered capability's steps run in order into a hidden staging directory beside the
destination; then the frozen spec, the pack record, the docs and the manifest are written and
the directory is renamed into place. A crash never leaves a half-bundle that looks whole, and
``--force`` swaps the new bundle in atomically, so the old one is there until the new one is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

import mlhandoff.capabilities  # noqa: F401  (registers the built-in capabilities)
from mlhandoff._version import __version__
from mlhandoff.bundle import layout
from mlhandoff.bundle.manifest import build_manifest, write_manifest
from mlhandoff.capability import PackContext, registered
from mlhandoff.checks import CheckResult
from mlhandoff.contract.tables import TableLike
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import BundleExistsError, InputError, StorageError
from mlhandoff.pack.docs import write_docs
from mlhandoff.spec.loader import dump_spec, load_spec
from mlhandoff.spec.models import HandoffSpec
from mlhandoff.spec.todos import Todo, find_todos_in

#: Reports progress: the stage being run.
Reporter = Callable[[str], None]
_PARTIAL = ".partial"


@dataclass(frozen=True)
class PackResult:
    path: Path
    bundle_digest: str
    golden_rows: int
    #: The checklist as packed (the README's); lines that fail will fail ``verify`` too.
    checklist: tuple[CheckResult, ...] = ()
    #: TODOs left in the spec file, with their lines.
    todos: tuple[Todo, ...] = ()
    #: One-line notices from the steps (e.g. whether the model compiled, and why not).
    notices: tuple[str, ...] = ()

    @property
    def failing(self) -> list[CheckResult]:
        return [r for r in self.checklist if r.failed]


def pack(
    model: object | None = None,
    *,
    spec: str | Path | HandoffSpec = "handoff.yaml",
    sample: TableLike | None = None,
    out: str | Path = "dist",
    force: bool = False,
    base_dir: str | Path | None = None,
    allow_outside: bool = False,
    on_stage: Reporter | None = None,
    on_bytes: Callable[[int], None] | None = None,
    lock_hashes: bool = False,
    wheels: str | Path | None = None,
) -> PackResult:
    """Build a bundle from ``spec``; ``model`` (an in-memory object) overrides ``model.path``.

    ``sample`` overrides ``golden.sample``. Relative paths in the spec are resolved against the
    spec file's directory (or ``base_dir`` when ``spec`` is an object); files outside it are
    refused unless ``allow_outside``. ``lock_hashes`` records artifact hashes in the lock
    (``pip download`` from the index, or from the folder ``wheels`` alone, which implies it).
    """
    stage = on_stage or (lambda _: None)
    spec_path = None if isinstance(spec, HandoffSpec) else Path(spec)
    if isinstance(spec, HandoffSpec):
        base = Path(base_dir) if base_dir else Path.cwd()
        spec = spec.model_copy(deep=True)
    else:
        base = Path(base_dir) if base_dir else Path(spec).resolve().parent
        spec = load_spec(spec)
    out = Path(out)
    final = out / f"{spec.name}-{spec.version}"
    _recover_interrupted_replace(final)
    if final.exists() and not force:
        raise BundleExistsError(
            f"{final}: a bundle already exists there; bundles are immutable: bump 'version' in "
            "the spec, or replace it with force=True (--force on the command line)"
        )

    stage("reading sample")
    sample_table = _read_sample(sample, spec, base)

    with _storage_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        _reap_stale_partials(out, final.name)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=_PARTIAL, dir=out)
        )
        try:
            ctx = PackContext(
                spec=spec,
                base=base,
                root=tmp,
                sample=sample_table,
                model_object=model,
                allow_outside=allow_outside,
                on_bytes=on_bytes,
                lock_hashes=lock_hashes or wheels is not None,
                wheels=Path(wheels) if wheels is not None else None,
            )
            for capability in registered():
                for step in capability.steps:
                    stage(step.title)
                    step.run(ctx)
            stage("rendering docs")
            record = ctx.record()
            (tmp / layout.SPEC).write_text(dump_spec(spec), encoding="utf-8")
            (tmp / layout.PACK_RECORD).parent.mkdir(exist_ok=True)
            (tmp / layout.PACK_RECORD).write_text(
                record.model_dump_json(indent=2) + "\n", encoding="utf-8"
            )
            lines = write_docs(ctx, record)
            stage("hashing files")
            manifest = build_manifest(tmp, _meta(spec), on_bytes)
            write_manifest(tmp, manifest)
            _publish(tmp, final, force)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return PackResult(
        path=final,
        bundle_digest=manifest["bundle_digest"],
        golden_rows=record.golden_rows,
        checklist=tuple(lines),
        todos=tuple(find_todos_in(spec_path)) if spec_path else (),
        notices=tuple(ctx.notices),
    )


def _meta(spec: HandoffSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "version": spec.version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_by": f"mlhandoff {__version__}",
    }


def _read_sample(sample: TableLike | None, spec: HandoffSpec, base: Path) -> pa.Table:
    if sample is None:
        if spec.golden.sample is None:
            raise InputError(
                "no sample data: pass --sample (or sample= in Python) or set golden.sample in the spec"
            )
        sample = base / spec.golden.sample
    table, report = CompiledContract(spec.data_contract).read(
        sample, allow_extra=True, name="sample"
    )
    if table.num_rows == 0:
        raise InputError("sample has 0 rows; the golden set needs at least one row")
    report.raise_for_violations("sample")
    return table


@contextlib.contextmanager
def _storage_errors(out: Path) -> Any:
    """A full disk or a read-only folder is the user's to fix, not a bug: say what and where."""
    try:
        yield
    except OSError as exc:
        error = StorageError.from_os_error(exc, f"nothing was written to {out}")
        if error is None:
            raise
        raise error from exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_partials(out: Path, name: str) -> None:
    """Remove staging directories of this bundle left by packs that died (their pid is gone)."""
    for path in out.glob(f".{name}.*{_PARTIAL}"):
        pid = path.name[len(name) + 2 :].split(".", 1)[0]
        if path.is_dir() and not path.is_symlink() and (not pid.isdigit() or not _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _trash_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.replaced")


def _recover_interrupted_replace(final: Path) -> None:
    """A replace that died between its renames left the old bundle aside: put it back."""
    trash = _trash_name(final)
    if trash.is_dir() and not trash.is_symlink():
        if final.exists():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.rename(final)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            return False
        raise OSError(code, os.strerror(code), str(b))
    return True


def _publish(tmp: Path, final: Path, force: bool) -> None:
    """Move the finished bundle into place; a replaced bundle goes only once the new one is in."""
    os.chmod(tmp, 0o755)
    if final.exists() and force:
        if _exchange(tmp, final):  # final is the new bundle, tmp the old one: one atomic step
            shutil.rmtree(tmp, ignore_errors=True)
            return
        trash = _trash_name(final)  # elsewhere: two renames; _recover_interrupted_replace
        final.rename(trash)  # puts the old one back if we die in between
        try:
            tmp.rename(final)
        except OSError as exc:
            trash.rename(final)  # never lose the bundle that was there
            raise BundleExistsError(
                f"{final}: cannot move the new bundle into place: {exc}"
            ) from exc
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        tmp.rename(final)
    except OSError as exc:
        raise BundleExistsError(f"{final}: cannot move the bundle into place: {exc}") from exc
