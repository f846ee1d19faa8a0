"""Trust commands: keygen, sign, signoff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlhandoff.cli._app import app, console, run


@app.command()
def keygen(
    key: Annotated[
        Path, typer.Argument(help="Where to write the private key; KEY.pub is beside it.")
    ],
    force: Annotated[bool, typer.Option(help="Replace an existing key pair.")] = False,
) -> None:
    """Make an EC P-256 key pair for signing bundles and sign-offs (PEM; the private key 0600).

    Example: [bold]mlhandoff keygen keys/dana.key[/] → keys/dana.key, keys/dana.pub
    """
    from mlhandoff.bundle.signing import generate_key, key_id, load_public_key

    public = run(lambda: generate_key(key, force=force))
    console.print(f"wrote [bold]{key}[/] (private: keep it secret) and [bold]{public}[/]")
    console.print(f"key id {key_id(load_public_key(public).key)}", highlight=False)


@app.command()
def sign(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory.")],
    key: Annotated[Path, typer.Option(help="Private key (from mlhandoff keygen).")],
) -> None:
    """Sign a bundle in the OpenSSF model-signing format: signatures/model.sig over every file.

    The bundle must match its manifest first. The model_signing CLI verifies the result:
    model_signing verify key BUNDLE --signature BUNDLE/signatures/model.sig --public_key KEY.pub
    --ignore-paths BUNDLE/signatures
    """
    from mlhandoff.bundle.layout import SIGNATURE
    from mlhandoff.bundle.signing import sign_bundle

    signed = run(lambda: sign_bundle(bundle, key))
    console.print(f"signed {signed.files} files of [bold]{bundle}[/] into {bundle / SIGNATURE}")
    console.print(
        f"next: [bold]mlhandoff verify {bundle} --public-key {key.with_suffix('.pub')}[/]"
    )


@app.command()
def signoff(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory.")],
    role: Annotated[str, typer.Option(help="pm, ds or eng.")],
    name: Annotated[str, typer.Option(help="Who signs off.")],
    key: Annotated[Path, typer.Option(help="Their private key (from mlhandoff keygen).")],
    comment: Annotated[str | None, typer.Option(help="What they checked, or conditions.")] = None,
) -> None:
    """Sign off on a bundle: a signed statement of who, in which role, when, the bundle digest
    and a comment, added under signatures/signoffs/ (the bundle digest does not change).

    Example: [bold]mlhandoff signoff dist/x-1.0.0 --role ds --name "Dana" --key keys/dana.key[/]
    """
    from mlhandoff.bundle.signoffs import sign_off

    path = run(
        lambda: sign_off(bundle, role=role, name=name, key=key, comment=comment),
    )
    console.print(f"signed off as {role}: {path}")


logs_app = typer.Typer(help="Prediction logs: retention.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")


@logs_app.command("prune")
def logs_prune(
    log_dir: Annotated[Path, typer.Option("--dir", help="The prediction-log directory.")],
    retention: Annotated[
        str | None, typer.Option(help="Delete files older than this: 12h, 30d, 2w.")
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Take the retention from this bundle's privacy.log_retention."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="List what would be deleted.")] = False,
) -> None:
    """Delete prediction-log files older than the retention period (closed files only).

    Example: [bold]mlhandoff logs prune --dir logs/ --retention 30d[/]
    """
    from mlhandoff.errors import InputError
    from mlhandoff.serve.retention import PruneResult, parse_retention, prune

    def action() -> tuple[str, PruneResult]:
        text = retention
        if text is None and bundle is not None:
            from mlhandoff.bundle.bundle import open_bundle

            text = open_bundle(bundle).spec.privacy.log_retention
            if text is None:
                raise InputError(f"{bundle}: its spec sets no privacy.log_retention")
        if text is None:
            raise InputError("give --retention (e.g. 30d) or --bundle with privacy.log_retention")
        return text, prune(log_dir, parse_retention(text), dry_run=dry_run)

    text, result = run(action)
    verb = "would delete" if dry_run else "deleted"
    for path in result.deleted:
        console.print(f"{verb} {path}", highlight=False)
    console.print(
        f"{verb} {len(result.deleted)} file(s) older than {text} "
        f"({result.bytes_freed / 1e6:.1f} MB); kept {result.kept}"
    )
