"""``/api/v1/executors``: the executors directory (add: administrators and supervisors; list: staff)."""
from __future__ import annotations

from crm.api import ApiError, Blueprint, token_required, translates
from crm.executors import services as executors
from crm.executors.schemas import ExecutorCreateSchema, ExecutorListSchema, ExecutorQuerySchema, ExecutorSchema

#: who maintains the directory
MANAGERS = ("admin", "supervisor")
STAFF = ("operator", "supervisor", "admin", "executor")

bp = Blueprint("api_executors", __name__, description="Executors directory: АДС, управляющие организации, РСО, подрядчики")


@translates(executors.ExecutorError)
def _executor_error(exc: executors.ExecutorError) -> ApiError:
    return ApiError(400, f"invalid_{exc.field or 'executor'}", str(exc))


@bp.route("/executors", methods=["POST"])
@token_required(*MANAGERS)
@bp.body(ExecutorCreateSchema)
@bp.response(201, ExecutorSchema)
@bp.errors({400: "empty or taken name, unknown kind, a building not in the register (code invalid_name, "
                 "invalid_kind, invalid_topics, invalid_building_ids)"})
def executor_create(body: dict):
    """Add an executor to the directory"""
    executor = executors.create(body["name"], body["kind"], topics=body.get("topics"), phone=body.get("phone"),
                                email=body.get("email"), address=body.get("address"),
                                building_ids=body.get("building_ids"))
    return executors.view(executor), 201, {"Location": f"{bp.url_prefix}/executors/{executor.id}"}


@bp.route("/executors", methods=["GET"])
@token_required(*STAFF, session_ok=True)
@bp.query(ExecutorQuerySchema)
@bp.response(200, ExecutorListSchema)
def executor_list(args: dict):
    """The directory by name; `kind` and `topic` narrow it"""
    return {"items": [executors.view(e) for e in executors.list_executors(kind=args["kind"], topic=args["topic"])]}
