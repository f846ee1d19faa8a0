"""The example's signers, and signing a bundle the way the demo does (shared by the tests)."""

from __future__ import annotations

from pathlib import Path

#: The example's signers: key name (work/keys/<name>.key), role, name as signed.
SIGNERS = (
    ("dana", "ds", "Dana Scientist"),
    ("eli", "eng", "Eli Engineer"),
    ("pat", "pm", "Pat Manager"),
)


def sign_example(bundle: Path, example_dir: Path) -> dict[str, object]:
    """Sign ``bundle`` (Eli's key) and add the three sign-offs, as the demo does; returns the
    verify arguments that check them with keys from outside the bundle."""
    from mlhandoff.bundle.signing import sign_bundle
    from mlhandoff.bundle.signoffs import sign_off

    keys = example_dir / "work" / "keys"
    sign_bundle(bundle, keys / "eli.key")
    for name, role, who in SIGNERS:
        sign_off(bundle, role=role, name=who, key=keys / f"{name}.key")
    return {"public_keys": [keys / "eli.pub"], "keyring": keys}
