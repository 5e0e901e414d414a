"""Telephony pages: the callback worklist (operators, supervisors) and the live queue board (supervisors)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("telephony", __name__)
