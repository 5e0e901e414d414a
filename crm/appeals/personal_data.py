"""The appeals' personal data, declared to :mod:`crm.security.registry` at start-up: appeal
descriptions and history comments (under the citizen's key), and the building key each appeal copies
from its citizen's ``building`` blind index (cleared by erasure with the citizen's own blind indexes:
it tells the citizen's building to anyone holding the index key; re-keyed when the index's old key
is dropped), and the house picked from the buildings register (``building_id``, cleared by erasure:
an erased citizen's appeal must not keep saying where the citizen lives, nor make a later appeal
from that house its repeat)."""
from __future__ import annotations

from crm.appeals.models import Appeal, AppealEvent
from crm.security import registry


def register() -> None:
    """Declare the appeals' tables and the building-key copy."""
    registry.register_table(Appeal, lambda cid, owners: Appeal.citizen_id == cid,
                            encrypted=("description_enc",), category="appeal_text", cleared=("building_id",))
    registry.register_table(AppealEvent, lambda cid, owners: AppealEvent.citizen_id == cid,
                            encrypted=("comment_enc",), category="appeal_comments")
    registry.register_index_copy("building", Appeal, "building_key", "citizen_id")
