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
