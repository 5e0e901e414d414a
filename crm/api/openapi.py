"""The OpenAPI document at ``/api/v1/openapi.json``."""
from __future__ import annotations

from flask import jsonify

from crm.api import bp


@bp.get("/openapi.json")
def openapi():
    return jsonify({"openapi": "3.1.0", "info": {"title": "ЖКХ hotline CRM", "version": "1"}, "paths": {}})
