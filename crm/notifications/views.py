"""The supervisors' page «Шаблоны уведомлений»: the texts of the citizens' SMS and e-mails, editable,
with the built-in text one click away (:func:`crm.notifications.services.update_template`)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.notifications import services, templates
from crm.security.permissions import roles_required

bp = Blueprint("notifications", __name__)

def _page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    rows = services.editable_templates()
    for row in rows:
        if values and row["key"] == values.get("key"):
            row["body"], row["subject"] = values.get("body"), values.get("subject")
    return render_template("notifications/templates.html", rows=rows, errors=errors or {},
                           error_key=(values or {}).get("key"),
                           placeholders=", ".join("{" + p + "}" for p in templates.PLACEHOLDERS)), status


@bp.get("/notification-templates")
@roles_required(*services.EDITORS)
def template_list():
    return _page()


@bp.post("/notification-templates/<key>")
@roles_required(*services.EDITORS)
def template_save(key: str):
    """Save (``action=save``: ``body``, ``subject`` for e-mail) or reset (``action=reset``) one template.
    A refused text comes back 422 with the error under its field."""
    if key not in templates.TEMPLATES:
        abort(404)
    if request.form.get("action") == "reset":
        if services.reset_template(key, user=current_user):
            flash(_("Шаблон возвращён к исходному тексту."), "success")
        return redirect(url_for("notifications.template_list") + f"#tpl-{key}")
    body, subject = request.form.get("body", ""), request.form.get("subject")
    try:
        services.update_template(key, body=body, subject=subject, user=current_user)
    except services.TemplateError as exc:
        return _page({exc.field: str(exc)}, {"key": key, "body": body, "subject": subject}, 422)
    flash(_("Шаблон сохранён."), "success")
    return redirect(url_for("notifications.template_list") + f"#tpl-{key}")
