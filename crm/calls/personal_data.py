"""The calls' personal data, declared to :mod:`crm.security.registry` at start-up: the uploaded
file name of a call and its transcript (text and word timings), the recording files, and the calls
themselves as data-key owners (a call made before it was linked to a citizen encrypts its
transcript under the call's own key)."""
from __future__ import annotations

from pathlib import Path

from flask import current_app

from crm.calls.models import Call, Segment
from crm.calls.services import sweep_plaintext_leftovers
from crm.db import db
from crm.security import registry


def recordings(citizen_id: str) -> list[Path]:
    """The stored recording of every call of the citizen (whether or not the file exists)."""
    rec_dir = Path(current_app.config["CRM_RECORDINGS_DIR"])
    keys = db.session.execute(db.select(Call.storage_key).where(Call.citizen_id == citizen_id)).scalars()
    return [rec_dir / f"{key}.rec" for key in keys]


def register() -> None:
    """Declare the calls' tables, recordings and key owners."""
    registry.register_table(Call, lambda cid, owners: Call.citizen_id == cid,
                            encrypted=("original_name_enc",), category="call_file_names")
    registry.register_table(Segment, lambda cid, owners: Segment.owner_id.in_(owners),
                            encrypted=("text_enc", "words_enc"), category="transcripts")
    registry.register_files("recordings", recordings)
    registry.register_sweeper("recording_plaintext_leftovers", sweep_plaintext_leftovers)
    registry.register_key_owner(Call.id, Call.citizen_id)
