"""Key rotation: re-wrap every data key under the active KEK, in batches, resumable."""
from __future__ import annotations

from crm.db import db
from crm.security import audit
from crm.security.crypto import keyring, unwrap_dek, wrap_dek
from crm.security.models import DataKey


def rewrap_all(batch: int = 1000) -> int:
    """Re-wrap data keys not yet under the active KEK; commits per batch so it can be resumed.
    Returns how many were re-wrapped."""
    ring = keyring()
    done = 0
    while True:
        rows = db.session.execute(db.select(DataKey).where(DataKey.kek_id != ring.active_id).limit(batch)).scalars().all()
        if not rows:
            break
        for row in rows:
            dek = unwrap_dek(ring, row.wrapped, row.id, row.owner_id)
            row.kek_id, row.wrapped = wrap_dek(ring, dek, row.id, row.owner_id)
        done += len(rows)
        audit.record("keys.rewrap", detail=f"{len(rows)} data keys to {ring.active_id}",
                     actor=audit.system_actor("keys_rotate"))
        db.session.commit()
    return done
