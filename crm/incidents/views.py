"""«Инциденты»: the supervisors' list of outages and mass incidents, the surge proposals, the form that
registers an incident and the page that closes it (the linked appeals are then resolved and their
citizens told)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.i18n import Labels
from crm.incidents import services, surge
from crm.incidents.catalog import KINDS, SCOPES, STATUSES, TOPICS
from crm.incidents.forms import CloseForm, IncidentForm, ProposalForm
from crm.security.permissions import roles_required

bp = Blueprint("incidents", __name__)
SUPERVISORS = ("supervisor", "admin")


@bp.app_context_processor
def incident_labels():
    return {"INCIDENT_TOPICS": Labels(TOPICS), "INCIDENT_KINDS": Labels(KINDS), "INCIDENT_SCOPES": Labels(SCOPES),
            "INCIDENT_STATUSES": Labels(STATUSES)}


@bp.get("/incidents")
@roles_required(*SUPERVISORS)
def incident_list():
    """Open incidents first, then closed ones; the pending surge proposals above them."""
    rows = [services.view(i) for i in services.listing()]
    proposals = [(p, surge.building_address(p)) for p in surge.pending()]
    return render_template("incidents/list.html", rows=rows, proposals=proposals, proposal_form=ProposalForm())


@bp.route("/incidents/new", methods=["GET", "POST"])
@roles_required(*SUPERVISORS)
def incident_new():
    form = IncidentForm()
    status = 200
    if form.validate_on_submit():
        lines = [line.strip() for line in (form.addresses.data or "").splitlines() if line.strip()]
        area = (form.area.data or "").strip() or None
        try:
            incident = services.create(
                current_user, topic=form.topic.data, kind=form.kind.data, text=form.text.data,
                starts_at=form.starts_at.data, ends_at=form.ends_at.data,
                addresses=lines if form.scope.data == "buildings" else None,
                street=area if form.scope.data == "street" else None,
                district=area if form.scope.data == "district" else None)
        except services.IncidentError as exc:
            target = {"street": "area", "district": "area"}.get(exc.field or "", exc.field or "text")
            getattr(form, target, form.text).errors.append(str(exc))
        else:
            flash(_("Инцидент № %(id)s зарегистрирован: операторы видят его текст при приёме обращений.",
                    id=incident.id), "success")
            return redirect(url_for("incidents.incident_detail", incident_id=incident.id))
        status = 422
    elif request.method == "POST":
        status = 422
    else:  # prefilled from a link (the queue board's surge alert): ?address=…&topic=…
        address = (request.args.get("address") or "").strip()[:300]
        if address and not form.addresses.data:
            form.addresses.data = address
        if request.args.get("topic") in TOPICS and not form.topic.data:
            form.topic.data = request.args["topic"]
    return render_template("incidents/new.html", form=form), status


@bp.get("/incidents/<int:incident_id>")
@roles_required(*SUPERVISORS)
def incident_detail(incident_id: int):
    incident = services.get(incident_id) or abort(404)
    return render_template("incidents/detail.html", incident=services.view(incident), form=CloseForm())


@bp.post("/incidents/<int:incident_id>/close")
@roles_required(*SUPERVISORS)
def incident_close(incident_id: int):
    incident = services.get(incident_id) or abort(404)
    form = CloseForm()
    if form.validate_on_submit():
        try:
            services.close(current_user, incident.id, text=form.text.data)
        except services.IncidentError as exc:
            if exc.code == "incident_closed":  # closed meanwhile (another tab): no form to show the error in
                flash(str(exc), "error")
                return redirect(url_for("incidents.incident_detail", incident_id=incident.id))
            form.text.errors.append(str(exc))
        else:
            flash(_("Инцидент закрыт; связанные обращения выполнены, заявителям, давшим согласие, отправлены "
                    "уведомления."), "success")
            return redirect(url_for("incidents.incident_detail", incident_id=incident.id))
    return render_template("incidents/detail.html", incident=services.view(incident), form=form), 422


@bp.post("/incidents/proposals/<int:proposal_id>")
@roles_required(*SUPERVISORS)
def proposal_decide(proposal_id: int):
    """Accept a surge proposal (an incident on its house and service, with the text typed) or dismiss it."""
    form = ProposalForm()
    if not form.validate_on_submit():
        flash(_("Форма устарела: откройте страницу заново."), "error")
        return redirect(url_for("incidents.incident_list"))
    accept = form.decision.data == "accept"
    try:
        proposal = surge.decide(current_user, proposal_id, accept=accept, text=form.text.data, kind=form.kind.data)
    except services.IncidentError as exc:
        flash(str(exc), "error")
        return redirect(url_for("incidents.incident_list"))
    if accept:
        flash(_("Инцидент № %(id)s зарегистрирован по предложению.", id=proposal.incident_id), "success")
        return redirect(url_for("incidents.incident_detail", incident_id=proposal.incident_id))
    flash(_("Предложение отклонено."), "info")
    return redirect(url_for("incidents.incident_list"))
