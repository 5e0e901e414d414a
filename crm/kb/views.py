"""Knowledge-base pages: the list and search (every staff role reads), creating and editing an
article, a script or a building hint, its versions and restoring one (supervisors and administrators),
and the panel beside the intake form (``/kb/panel``, fetched by ``static/kb.js`` when the operator
chooses a topic or a house). Views parse input, call one service and render."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.appeals.catalog import TOPICS
from crm.buildings import services as buildings
from crm.i18n import N_, Labels
from crm.kb import scripts
from crm.kb import services as kb
from crm.kb.forms import ActionForm, ArticleForm
from crm.security.permissions import roles_required
from crm.users import services as users

bp = Blueprint("kb", __name__)
READERS = kb.READ_ROLES
STAGE_NAMES = {"opening": N_("Начало"), "body": N_("Основная часть"), "closing": N_("Завершение")}


@bp.app_context_processor
def _kb_helpers():
    return {"KB_KINDS": Labels(kb.KIND_NAMES), "KB_TOPICS": Labels(TOPICS)}


def _can_edit() -> bool:
    return current_user.is_authenticated and current_user.role in kb.EDIT_ROLES


@bp.get("/kb")
@roles_required(*READERS)
def kb_list():
    """Every entry by kind and topic, or the search results for ``?q=`` (words in any form);
    ``?topic=``, ``?kind=`` narrow; ``?archived=1`` lists the archived ones."""
    q = (request.args.get("q") or "").strip()[:kb.MAX_QUERY]
    topic = request.args.get("topic") if request.args.get("topic") in TOPICS else None
    kind = request.args.get("kind") if request.args.get("kind") in kb.KIND_NAMES else None
    archived = request.args.get("archived") == "1"
    if q:
        results, rows = kb.search(q, topic=topic, kind=kind, limit=50), []
    else:
        results, rows = None, kb.list_articles(topic=topic, kind=kind, archived=archived)
    return render_template("kb/list.html", q=q, topic=topic, kind=kind, archived=archived, results=results,
                           rows=rows, can_edit=_can_edit(), topics=TOPICS)


def _building_label(building_id) -> str:
    b = buildings.get(building_id) if building_id else None
    return b.address if b else ""


def _save(form: ArticleForm, article=None):
    """Create or update from the form; on :class:`KbError` the form comes back (422) with the error
    under its field."""
    data = {"title": form.title.data, "body": form.body.data, "topic": form.topic.data or None,
            "kind": form.kind.data, "building_id": form.building_id.data or None}
    if data["kind"] == "hint" and not data["building_id"] and (form.building.data or "").strip():
        found = buildings.find(form.building.data)
        data["building_id"] = found.id if found else None
    try:
        if article is None:
            return kb.create(current_user, **data), None
        return kb.update(current_user, article.id, expected_version=form.expected_version.data, **data), None
    except kb.KbError as exc:
        target = getattr(form, "building" if exc.field == "building_id" else (exc.field or ""), None)
        if target is not None:
            target.errors = list(target.errors) + [str(exc)]
        return None, str(exc)


@bp.route("/kb/new", methods=["GET", "POST"])
@roles_required(*kb.EDIT_ROLES)
def kb_new():
    """A new article, script (``?kind=script``) or building hint; ``?topic=`` preselects the topic."""
    form = ArticleForm()
    if request.method == "GET":
        form.kind.data = request.args.get("kind") if request.args.get("kind") in kb.KIND_NAMES else "article"
        form.topic.data = request.args.get("topic") if request.args.get("topic") in TOPICS else ""
    elif form.validate_on_submit():
        article, error = _save(form)
        if article is not None:
            flash(_("Запись сохранена (версия %(v)s).", v=article.version))
            return redirect(url_for("kb.kb_article", article_id=article.id))
        return render_template("kb/edit.html", form=form, article=None, error=error), 422
    return render_template("kb/edit.html", form=form, article=None, error=None)


@bp.get("/kb/<int:article_id>")
@roles_required(*READERS)
def kb_article(article_id: int):
    a = kb.get(article_id) or abort(404)
    return render_template("kb/article.html", a=a, lines=scripts.parse(a.body) if a.kind == "script" else [],
                           stages=Labels(STAGE_NAMES), building=buildings.get(a.building_id) if a.building_id else None,
                           can_edit=_can_edit(), action=ActionForm(), editor=users.get(a.updated_by) if a.updated_by else None)


@bp.route("/kb/<int:article_id>/edit", methods=["GET", "POST"])
@roles_required(*kb.EDIT_ROLES)
def kb_edit(article_id: int):
    a = kb.get(article_id) or abort(404)
    form = ArticleForm()
    if request.method == "GET":
        form.kind.data, form.topic.data, form.title.data, form.body.data = a.kind, a.topic or "", a.title, a.body
        form.building_id.data = a.building_id or ""
        form.building.data = _building_label(a.building_id)
        form.expected_version.data = a.version
    elif form.validate_on_submit():
        before = a.version
        article, error = _save(form, a)
        if article is not None:
            if article.version == before:
                flash(_("Изменений нет: новая версия не сохранена."))
            else:
                flash(_("Запись сохранена (версия %(v)s).", v=article.version))
            return redirect(url_for("kb.kb_article", article_id=article.id))
        return render_template("kb/edit.html", form=form, article=kb.get(article_id), error=error), 422
    return render_template("kb/edit.html", form=form, article=a, error=None)


@bp.get("/kb/<int:article_id>/versions")
@roles_required(*READERS)
def kb_versions(article_id: int):
    """Every version of the entry with who saved it and when; ``?v=N`` shows version N's text."""
    a = kb.get(article_id) or abort(404)
    rows = kb.versions(article_id)
    shown = None
    if request.args.get("v"):
        shown = kb.get_version(article_id, request.args["v"]) or abort(404)
    return render_template("kb/versions.html", a=a, rows=rows, shown=shown, people=users.by_id(),
                           can_edit=_can_edit(), action=ActionForm())


@bp.post("/kb/<int:article_id>/versions/<int:version>/restore")
@roles_required(*kb.EDIT_ROLES)
def kb_restore(article_id: int, version: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        a = kb.restore(current_user, article_id, version)
    except kb.KbError as exc:
        if exc.status == 404:
            abort(404)
        flash(str(exc), "error")
        return redirect(url_for("kb.kb_versions", article_id=article_id))
    flash(_("Версия %(old)s восстановлена как версия %(v)s.", old=version, v=a.version))
    return redirect(url_for("kb.kb_article", article_id=article_id))


@bp.post("/kb/<int:article_id>/archive")
@roles_required(*kb.EDIT_ROLES)
def kb_archive(article_id: int):
    """Archive the entry (``archived=0``: bring it back); a new version either way."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        a = kb.set_archived(current_user, article_id, request.form.get("archived", "1") == "1")
    except kb.KbError:
        abort(404)
    flash(_("Запись перенесена в архив.") if a.archived else _("Запись возвращена из архива."))
    return redirect(url_for("kb.kb_article", article_id=article_id))


@bp.get("/kb/panel")
@roles_required("operator", "supervisor", "admin")
def kb_panel():
    """The panel beside the intake form (an HTML fragment): the scripts and articles of ``?topic=``
    and the hints about the house ``?building_id=``."""
    panel = kb.intake_panel(request.args.get("topic"), request.args.get("building_id"))
    return render_template("kb/_panel.html", panel=panel, stages=Labels(STAGE_NAMES))
