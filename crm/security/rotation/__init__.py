"""Key rotation without downtime: :mod:`~crm.security.rotation.kek` re-wraps every data key under a
new key-encryption key; :mod:`~crm.security.rotation.indexes` moves each blind index to a new key
through its second column. Each module's docstring explains its protocol.

The two RQ jobs are declared here, not in those modules: a job is stored in Redis under its dotted
name (``crm.security.rotation.rewrap_job``, ``crm.security.rotation.index_backfill_job``), so jobs
queued by an earlier release still find their function. The package re-exports the public names
of both modules, so ``from crm.security import rotation`` and ``rotation.start_rotation()`` keep working.
"""
from __future__ import annotations

from crm.jobs import job
from crm.security.crypto import DecryptError
from crm.security.registry import IndexSource
from crm.security.rotation.errors import RotationError
from crm.security.rotation.indexes import (ROTATABLE, index_drop, index_start, index_status, index_switch,
                                           run_index_backfill)
from crm.security.rotation.kek import retire, rewrap_all, run_rotation, start_rotation


@job(timeout_s=3600 * 6, result_ttl_s=7 * 86400)
def rewrap_job(rotation_id: int) -> dict:
    """RQ job: run rotation ``rotation_id`` to the end (safe to run twice or after a crash)."""
    return run_rotation(rotation_id)


@job(timeout_s=3600 * 6, result_ttl_s=7 * 86400)
def index_backfill_job(name: str) -> dict:
    """RQ job: fill the new slot of index ``name`` for every citizen (resumable)."""
    return run_index_backfill(name)


__all__ = ["start_rotation", "run_rotation", "rewrap_job", "rewrap_all", "retire", "RotationError",
           "index_start", "run_index_backfill", "index_backfill_job", "index_switch", "index_drop", "index_status",
           "DecryptError", "IndexSource", "ROTATABLE"]
