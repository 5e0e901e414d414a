"""The CSAT package's personal data, declared to :mod:`crm.security.registry` at start-up: the
citizen's free-text survey comment (ciphertext under the citizen's key, shredded by erasure). The
answers' statistics (solved, score, first time) are not personal data and stay for the KPIs."""
from __future__ import annotations

from crm.csat.models import CsatSurvey
from crm.security import registry


def register() -> None:
    """Declare ``csat_surveys``."""
    registry.register_table(CsatSurvey, lambda cid, owners: CsatSurvey.citizen_id == cid,
                            encrypted=("comment_enc",), category="csat_comments")
