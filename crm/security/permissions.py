"""Role checks as decorators. Roles: operator, supervisor, dpo, admin, executor (read-only), ivr (a
machine client: the PBX's voice menu, API token only, the /api/v1/ivr lookups and nothing else)."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from crm.i18n import N_
from crm.extensions import login_manager

ROLES = ("operator", "supervisor", "dpo", "admin", "executor", "ivr")
ROLE_NAMES_RU = {"operator": N_("оператор"), "supervisor": N_("супервизор"), "dpo": N_("ответственный за ПДн"),
                 "admin": N_("администратор"), "executor": N_("исполнитель"),
                 "ivr": N_("голосовое меню (IVR)")}


class PermissionDenied(Exception):
    """Raised by services when the actor's role may not do this."""


def require_role(user, *roles: str) -> None:
    """Raise :class:`PermissionDenied` unless ``user`` has one of ``roles``."""
    if user is None or not getattr(user, "is_authenticated", False) or user.role not in roles:
        raise PermissionDenied(f"role {getattr(user, 'role', None)!r} may not do this (needs {', '.join(roles)})")


def roles_required(*roles: str):
    """View decorator: 401 → login redirect for anonymous users, 403 for a wrong role."""
    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return fn(*args, **kwargs)
        wrapper.crm_roles = roles
        return wrapper
    return deco
