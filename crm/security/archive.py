"""The access log's archive and the DPO's attestation (what ``crm audit export|verify --archive|attest`` do).

- :func:`export`: entries of a period as JSON lines with their hashes, written atomically and
  fsynced; the file verifies on its own. The export itself is logged.
- :func:`verify_archive`: the chain inside such a file, and, given a checkpoint directory, that
  every checkpoint falling in it matches.
- :func:`attest_verified`: verify the chain and the checkpoints, then append the DPO's signed
  attestation of the newest checkpoint (logged).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crm.db import db
from crm.security import audit, checkpoints


def export(path: Path, start: datetime | None, end: datetime | None) -> dict:
    """Write the entries from ``start`` (inclusive, aware UTC; None: the beginning) to ``end``
    (exclusive; None: now) to ``path`` (through ``path.part``, then renamed). Returns
    ``{"first", "last", "count", "sha256"}`` (hex digest of the file). Raises LookupError when the
    period holds no entries."""
    path = Path(path)
    rng = audit.seq_range(start, end)
    if rng is None:
        raise LookupError("no entries in that period")
    digest = hashlib.sha256()
    n = 0
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in audit.export_lines(*rng):
            data = line + "\n"
            fh.write(data)
            digest.update(data.encode("utf-8"))
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    audit.record("audit.export", detail=f"seq={rng[0]}-{rng[1]} entries={n} sha256={digest.hexdigest()}",
                 actor=audit.system_actor("audit_export"))
    db.session.commit()
    return {"first": rng[0], "last": rng[1], "count": n, "sha256": digest.hexdigest()}


@dataclass
class ArchiveReport:
    """The outcome of :func:`verify_archive`: ``problem`` None means it held. ``count``, ``first``,
    ``last``: the entries checked; ``matched``: checkpoints falling in the archive (None when no
    checkpoint directory was given); ``notes``: remarks of the checkpoint check."""

    count: int = 0
    first: int | None = None
    last: int | None = None
    problem: str | None = None
    matched: int | None = None
    notes: list[str] = field(default_factory=list)


def verify_archive(path: Path, checkpoint_dir: Path | None = None,
                   public_key: Ed25519PublicKey | None = None) -> ArchiveReport:
    """Check the chain inside an export (:func:`export`) and, with ``checkpoint_dir``, the
    checkpoints (attested with ``public_key`` when given) against it."""
    with open(path, encoding="utf-8") as fh:
        count, bad, message, info = audit.verify_lines(fh)
    if bad is not None:
        return ArchiveReport(count=count, problem=f"archive {path}: first bad entry {bad} (after {count} good entries): "
                                                  f"{message}")
    rep = ArchiveReport(count=count, first=info["first"], last=info["last"])
    if checkpoint_dir is None:
        return rep
    cps, lines = checkpoints.check_file(Path(checkpoint_dir), public_key)
    rep.notes = list(cps.notes)
    if not cps.ok:
        rep.problem = "; ".join(cps.problems)
        return rep
    for line in lines:
        d = line.data
        if line.kind == "checkpoint" and d["seq"] in info["hashes"] and info["hashes"][d["seq"]] != d["hash"]:
            rep.problem = f"entry {d['seq']}: the archive's hash differs from checkpoint line {line.number}"
            return rep
    rep.matched = sum(1 for ln in lines if ln.kind == "checkpoint" and ln.data["seq"] in info["hashes"])
    return rep


def attest_verified(directory: Path, private_key: Ed25519PrivateKey, by: str = "") -> tuple[dict, list[str]]:
    """Verify the chain and the checkpoints in ``directory``, then append the DPO's attestation
    (:func:`crm.security.checkpoints.attest`) and log it. Returns the attestation line's data and
    the check's notes. Raises :class:`crm.security.checkpoints.CheckpointError` ("not attesting:
    …") when the chain or the checkpoints do not hold, or the attestation cannot be written."""
    count, bad, message = audit.verify()
    if bad is not None:
        raise checkpoints.CheckpointError(f"not attesting: after {count} good entries: {message}")
    # attesting is how a stale attestation is renewed: its age is not a reason to refuse
    rep = checkpoints.verify_checkpoints(directory, max_age_days=False)
    if not rep.ok:
        raise checkpoints.CheckpointError("not attesting: " + "; ".join(rep.problems))
    data = checkpoints.attest(directory, private_key, by=by)
    audit.record("audit.attest", detail=f"line={data['n']} checkpoint={data['checkpoint']} seq={data['seq']} "
                 f"dpo_key={checkpoints.fingerprint(private_key)}", actor=audit.system_actor(f"attest:{by}"[:60]))
    db.session.commit()
    return data, list(rep.notes)
