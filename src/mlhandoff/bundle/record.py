"""``reports/pack.json``: what ``pack`` resolved and measured about the artifacts.

The frozen ``handoff.yaml`` stays as the user wrote it (defaults filled), so signatures and
sign-offs over it never change when pack learns something; everything pack computes (where the
model landed in the bundle, the inferred flavor, its compiled form, git state, data digests)
lives here instead.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlhandoff.spec.models import FlavorName


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRecord(_Record):
    path: str = Field(description="The model inside the bundle, relative to its root.")
    flavor: FlavorName
    classes: list[int | bool | str] | None = Field(
        default=None, description="A classifier's classes, in the model's order."
    )
    from_memory: bool = Field(
        default=False,
        description="Saved from an in-memory object (a notebook) rather than copied from a file.",
    )


class DataDigest(_Record):
    path: str = Field(description="As written in training.data (relative to the spec).")
    role: Literal["train", "eval", "test", "other"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TrainingRecord(_Record):
    code_path: str | None = Field(default=None, description="The code inside the bundle.")
    git_commit: str | None = None
    git_dirty: bool | None = None
    data: list[DataDigest] = Field(default_factory=list)
    data_root: str | None = Field(
        default=None, description="The directory training.data paths are relative to, at pack."
    )


class CompiledRecord(_Record):
    path: str = Field(description="The compiled model's directory inside the bundle.")
    compiler: str = Field(description="The library that runs it (treelite).")
    version: str = Field(description="Its version at pack.")


class PackRecord(_Record):
    record_version: Literal[1] = 1
    model: ModelRecord
    training: TrainingRecord = Field(default_factory=TrainingRecord)
    golden_rows: int = Field(ge=0)
    compiled: CompiledRecord | None = Field(
        default=None,
        description="The compiled form pack proved equivalent (reports/compile.json), if any.",
    )
