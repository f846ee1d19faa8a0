"""Serving a bundle over HTTP with its API and data contracts enforced."""

from mlhandoff.serve.app import ModelService, ServeConfig, create_app

__all__ = ["ModelService", "ServeConfig", "create_app"]
