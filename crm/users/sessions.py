"""Staff sessions kept server-side (issue 17 point 2), and the web settings of an HTTPS deployment.

**What the cookie carries.** Flask's session cookie is signed, not secret, and lives as long as the
browser keeps it: a copy of it used to work until the user's session nonce changed (which ended
*every* session of the user). Now each sign-in is a :class:`~crm.users.models.UserSession` row and
the cookie carries, besides Flask-Login's ``"<id>:<nonce>"``, a random session id (``crm_sid``,
32 bytes); the row is keyed by its SHA-256, so a read of the table signs nobody in. A request is
signed in only while its row is live:

- sign-out ends *that* row (a copied cookie is refused afterwards; the user's other sessions go
  on), :func:`end_all` ends every row of a user (an admin's «завершить сеансы», a role change,
  deactivation — :func:`_role_or_active_changed` catches those at the model, whichever service
  changes them, and rotates the nonce as well);
- ``CRM_SESSION_IDLE_MIN`` (15) without a request and ``CRM_SESSION_MAX_H`` (12) after sign-in
  end it; the next request is sent to the sign-in page with a Russian message saying why.
  Requests to ``/api/v1`` made by the pages' scripts do not count as activity (a page left open
  with a polling board still goes idle).

**Fresh sign-in.** Exports of personal data and bulk reveals ask for the password again when it was
last typed in this session more than ``CRM_REAUTH_MIN`` (5) minutes ago (:func:`fresh_required`,
the ``users.reauth`` page), then continue to the page asked for.

**Sign-in** (:func:`start`) begins a new Flask session: everything the anonymous session held —
its CSRF token included — is dropped (session fixation; the token changes at sign-in), only the
language choice is kept.

**HTTPS** (:func:`configure`, ``CRM_HTTPS``): session and remember-me cookies ``Secure``, HSTS, and
Flask-WTF's strict Referer check off — the token check stays. The Referer check is Flask-WTF's
defence for HTTPS when cookies could be sent cross-site; our cookies are ``SameSite=Lax``, so a
cross-site POST carries no session and no CSRF cookie-session at all, and browsers or proxies that
strip the Referer (``Referrer-Policy: no-referrer``, privacy extensions) no longer break sign-in.
The client's address and scheme come from the proxy only through ProxyFix with
``CRM_TRUSTED_PROXIES`` hops (crm.app), the one trusted way the access log uses too.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user, login_user
from sqlalchemy import event, inspect, update

from crm.db import db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.users.models import User, UserSession

#: The Flask session key holding the random session id.
SID_KEY = "crm_sid"
#: Seconds between two writes of ``last_seen_at`` of one session (one write per request would do the
#: same work on every page for nothing; the idle limit is counted in minutes).
TOUCH_EVERY_S = 30
#: Session keys kept across sign-in (nothing the anonymous visitor chose can matter for security).
KEPT_AT_SIGN_IN = ("lang",)
#: Rows of ended sessions are kept this long (the sessions page, audits), then deleted at a sign-in.
KEEP_ENDED_DAYS = 30

#: Why a session ended: the code stored in ``end_reason`` → the message on the sign-in page.
END_MESSAGES = {
    "idle": _l("Сеанс завершён: не было действий дольше %(minutes)s мин. Войдите снова."),
    "expired": _l("Сеанс завершён: прошло %(hours)s ч после входа. Войдите снова."),
    "logout": _l("Сеанс завершён. Войдите снова."),
    "ended": _l("Сеанс завершён. Войдите снова."),
    "admin": _l("Сеанс завершён администратором. Войдите снова."),
    "role": _l("Сеанс завершён: изменена роль учётной записи. Войдите снова."),
    "disabled": _l("Сеанс завершён: учётная запись отключена."),
    "self": _l("Сеанс завершён с другого устройства. Войдите снова."),
}


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _idle() -> timedelta:
    return timedelta(minutes=current_app.config["CRM_SESSION_IDLE_MIN"])


def _max_age() -> timedelta:
    return timedelta(hours=current_app.config["CRM_SESSION_MAX_H"])


# --- sign-in and sign-out -----------------------------------------------------------------------------

def start(user: User) -> UserSession:
    """Sign ``user`` in on this request once every factor was checked: a new Flask session (the old
    one and its CSRF token dropped, the language kept), Flask-Login's ``login_user`` and a new
    session row, committed. Returns the row. Call it where ``login_user`` would be called."""
    kept = {k: session[k] for k in KEPT_AT_SIGN_IN if k in session}
    session.clear()
    session.update(kept)
    g.pop("csrf_token", None)  # Flask-WTF caches the request's token on g: the next form gets a new one
    login_user(user)
    sid = secrets.token_urlsafe(32)
    ip, ua = audit.request_origin()
    now = utcnow()
    row = UserSession(id=_hash(sid), user_id=user.id, created_at=now, last_seen_at=now, fresh_at=now, ip=ip,
                      user_agent=ua)
    db.session.add(row)
    db.session.execute(db.delete(UserSession).where(UserSession.user_id == user.id,
                                                    UserSession.ended_at < now - timedelta(days=KEEP_ENDED_DAYS)))
    db.session.commit()
    session[SID_KEY] = sid
    g.crm_user_session = row
    return row


def current() -> UserSession | None:
    """The live session row of this request (after the user was loaded), or None."""
    return g.get("crm_user_session")


def end_current(reason: str = "logout") -> None:
    """End this request's session row (sign-out); the caller commits and calls ``logout_user``."""
    row = current()
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = utcnow(), reason


def end_all(user: User, reason: str) -> int:
    """End every live session row of ``user`` (no commit: the caller's transaction). Returns how many."""
    result = db.session.execute(update(UserSession).where(UserSession.user_id == user.id,
                                                          UserSession.ended_at.is_(None))
                                .values(ended_at=utcnow(), end_reason=reason))
    return result.rowcount or 0


def end_one(user: User, session_id: str) -> bool:
    """End ``user``'s own session ``session_id`` (the row id shown on the sessions page), logged as
    ``auth.session_end``; committed. Returns False when no live session of the user has that id."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user.id or row.ended_at is not None:
        return False
    row.ended_at, row.end_reason = utcnow(), "self"
    audit.record("auth.session_end", actor=audit.Actor(user.id, user.username, user.role),
                 detail=f"user={user.id} session={session_id[:12]}")
    db.session.commit()
    return True


def live(user: User) -> list[UserSession]:
    """``user``'s sessions that are neither ended nor past a limit, the most recently used first."""
    now = utcnow()
    rows = db.session.execute(db.select(UserSession).where(UserSession.user_id == user.id,
                                                           UserSession.ended_at.is_(None))
                              .order_by(UserSession.last_seen_at.desc())).scalars()
    return [r for r in rows if _expiry(r, now) is None]


def _expiry(row: UserSession, now: datetime) -> str | None:
    if now - row.created_at >= _max_age():
        return "expired"
    if now - row.last_seen_at >= _idle():
        return "idle"
    return None


# --- each request -------------------------------------------------------------------------------------

def check(user: User, revoked: str | None = None) -> bool:
    """Whether this request's session (``crm_sid`` of the cookie) is a live session of ``user``;
    called by the Flask-Login loader, with ``revoked`` the reason when the login id itself is no
    longer good (a rotated nonce, a disabled account). Ends a session so revoked or past its idle or
    absolute limit (committed) and notes why on ``g.crm_session_ended`` for :func:`before_request`;
    moves ``last_seen_at`` on (at most every :data:`TOUCH_EVERY_S`, not for ``/api/``)."""
    sid = session.get(SID_KEY)
    row = db.session.get(UserSession, _hash(sid)) if isinstance(sid, str) and sid else None
    if row is None or row.user_id != user.id:
        g.crm_session_ended = revoked or "ended"
        return False
    now = utcnow()
    if row.ended_at is None:
        reason = revoked or _expiry(row, now)
        if reason is not None:
            row.ended_at, row.end_reason = now, reason
            db.session.commit()
    if row.ended_at is not None:
        g.crm_session_ended = row.end_reason or "ended"
        return False
    if not request.path.startswith("/api/") and (now - row.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
        row.last_seen_at = now
        db.session.commit()
    g.crm_user_session = row
    return True


def before_request():
    """Load the signed-in user first thing (so a session row is checked and touched before the view
    runs, with nothing else in the transaction); a page request whose session ended goes to the
    sign-in page with the reason. ``/api/`` requests fall through (the API answers 401)."""
    if request.endpoint in (None, "static"):
        return None
    # each request's user comes from its own cookie: a user cached on ``g`` by an earlier request of
    # the same app context (tests keep one open across requests) is dropped, as is that request's row
    for key in ("_login_user", "crm_user_session", "crm_session_ended"):
        g.pop(key, None)
    current_user._get_current_object()  # runs the loader → check()
    reason = g.pop("crm_session_ended", None)
    if reason is None or request.path.startswith("/api/"):
        return None
    kept = {k: session[k] for k in KEPT_AT_SIGN_IN if k in session}
    session.clear()
    session.update(kept)
    message = END_MESSAGES.get(reason, END_MESSAGES["ended"])
    flash(str(message) % {"minutes": current_app.config["CRM_SESSION_IDLE_MIN"],
                          "hours": current_app.config["CRM_SESSION_MAX_H"]}, "error")
    if request.endpoint == "users.login":
        return None
    nxt = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("users.login", next=nxt))


# --- fresh sign-in before exports ---------------------------------------------------------------------

def is_fresh() -> bool:
    """Whether the password was typed in this session within ``CRM_REAUTH_MIN`` minutes."""
    row = current()
    return row is not None and utcnow() - row.fresh_at < timedelta(minutes=current_app.config["CRM_REAUTH_MIN"])


def mark_fresh() -> None:
    """The password was just typed again in this session (no commit: the caller's transaction)."""
    row = current()
    if row is not None:
        row.fresh_at = utcnow()


def require_fresh():
    """For a view about to export personal data: None when the password is fresh
    (:func:`is_fresh`), else the redirect to ``users.reauth``, which comes back to this URL (a GET;
    after a POST, to the page it came from)."""
    if not current_user.is_authenticated or is_fresh():
        return None
    nxt = request.full_path.rstrip("?") if request.method == "GET" else (request.referrer or "")
    return redirect(url_for("users.reauth", next=nxt))


def fresh_required(fn):
    """View decorator for exports of personal data and bulk reveals (:func:`require_fresh`). Put it
    below the role check (``@roles_required``)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        return require_fresh() or fn(*args, **kwargs)
    wrapper.crm_fresh = True
    return wrapper


# --- a role change or deactivation ends every session -------------------------------------------------

@event.listens_for(User, "before_update")
def _role_or_active_changed(mapper, connection, target: User) -> None:
    """Whatever service changes a user's role or deactivates them, every session ends in the same
    flush: the session nonce changes (Flask-Login ids and remember-me cookies issued before are
    stale) and the live rows are ended (reason ``role`` or ``disabled``)."""
    state = inspect(target)
    role_changed = state.attrs.role.history.has_changes()
    disabled = state.attrs.active.history.has_changes() and not target.active
    if not (role_changed or disabled):
        return
    target.session_nonce = secrets.token_hex(8)
    connection.execute(update(UserSession.__table__).where(UserSession.__table__.c.user_id == target.id,
                                                           UserSession.__table__.c.ended_at.is_(None))
                       .values(ended_at=utcnow(), end_reason="disabled" if disabled else "role"))


# --- the app ------------------------------------------------------------------------------------------

def configure(app) -> None:
    """Session cookies and CSRF for ``CRM_HTTPS`` (see the module docstring), the HSTS header, the
    per-request session check. Called by the app factory after the configuration is loaded."""
    if app.config["CRM_HTTPS"]:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
        app.config["PREFERRED_URL_SCHEME"] = "https"
        app.config["WTF_CSRF_SSL_STRICT"] = False
        if app.config["SESSION_COOKIE_SAMESITE"] not in ("Lax", "Strict"):
            raise ValueError("CRM_HTTPS: SESSION_COOKIE_SAMESITE must be Lax or Strict (the CSRF check "
                             "without a Referer relies on it)")
    app.before_request(before_request)

    @app.after_request
    def hsts(resp):
        max_age = app.config["CRM_HSTS_MAX_AGE_S"]
        if app.config["CRM_HTTPS"] and max_age and request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", f"max-age={int(max_age)}; includeSubDomains")
        return resp
