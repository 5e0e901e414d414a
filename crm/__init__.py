"""Citizen hotline CRM for housing and utilities. ``create_app()`` builds the Flask application."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict | None = None) -> "Flask":
    """Application factory (:func:`crm.app.create_app`): configuration, extensions, blueprints,
    hooks, error handlers, commands. ``test_config`` overrides the configuration (tests)."""
    # deferred: every ``import crm.<module>`` runs this package first; the factory imports every
    # feature, which a lower module (crm.config, crm.db, the transcription pipeline) must not load
    from crm.app import create_app as build

    return build(test_config)
