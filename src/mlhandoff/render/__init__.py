"""Documents rendered from the spec plus measured results, so docs never drift from the truth."""

from mlhandoff.render.documents import render_model_card, render_readme

__all__ = ["render_model_card", "render_readme"]
