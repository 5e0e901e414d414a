"""Signed checkpoints of the access-log chain head, kept outside the database.

What the hash chain alone proves
--------------------------------
:func:`crm.security.audit.verify` proves the entries in the database agree with each other and with
the ``audit_head`` row. It cannot catch anyone who can write the database: SHA-256 has no secret, so
after deleting the newest entries (and setting the head row back), or after editing an old entry and
re-hashing everything after it, the chain verifies again. The append-only trigger (migration 0002)
stops the application and careless hands, not a database superuser, who can disable it.

Checkpoints
-----------
Every ``CRM_AUDIT_CHECKPOINT_EVERY_S`` seconds (RQ job :func:`checkpoint_job`, or ``crm audit
checkpoint``) the app appends one line to ``checkpoints.jsonl`` in ``CRM_AUDIT_CHECKPOINT_DIR``:
the head ``(seq, hash)``, the UTC time, the SHA-256 of the previous line (``prev``: the file is a
chain of its own) and an Ed25519 signature. ``crm audit verify --checkpoints DIR --public-key FILE``
then checks the file and that **every** checkpoint's ``(seq, hash)`` is still in the chain. An
entry is fixed once a checkpoint after it has been published: removing the newest entries leaves a
checkpoint naming a ``seq`` that no longer exists; editing and re-hashing changes the hash at every
later checkpoint. Entries still uncovered a grace period after they were written, a file the
chain says is longer (each checkpoint is also logged as ``audit.checkpoint``), and unreadable or
re-ordered lines are reported too.

Keys: forward-secure app keys, anchored by the DPO
--------------------------------------------------
The app must sign automatically, so it cannot use the DPO's private key. Each checkpoint is instead
signed with a **one-time** app key, and names the public key of the next one (``next_key``); the app
keeps only that next private key (``CRM_AUDIT_SIGNING_KEY``) and overwrites the used one. This is
forward integrity in the sense of Bellare & Yee ("Forward integrity for secure audit logs", 1997)
and Schneier & Kelsey ("Secure audit logs to support computer forensics", 1999): whoever steals the
app's key at time *t* can sign only lines after *t*; lines written before stay unforgeable, so they
cannot truncate the file and write a different past onto it.

The **DPO's** key pair (``crm audit keygen --out DIR``) is the trust anchor: the private key never
goes to the server. From time to time the DPO runs ``crm audit attest --private-key FILE``, which
verifies everything and appends an attestation line signed with the DPO's key; it commits to the
hash of every earlier line. ``verify --public-key`` (the DPO's public key) then trusts the first
app key and every line before the newest attestation and every later line signed along the same
key chain. If the app's key state is lost or replaced, the app starts a new key chain (a
``genesis`` line), raises an alert, and verification fails until the DPO has looked and attested.

What actually defends against an administrator who controls the app server and the database
-------------------------------------------------------------------------------------------
Honestly: only data that left their reach before they acted. Concretely —

* **History older than the last checkpoint the DPO can still read is safe.** If ``checkpoints.jsonl``
  is kept where the admin cannot rewrite it — a directory on the DPO's own host or share where the
  app may only append, WORM / object-lock storage, a remote log host — or if the DPO keeps copies
  (the file is small: ~400 bytes a line, ~35 MB a year at 5-minute checkpoints), any later rewrite
  of entries up to that checkpoint is detected. Forward-secure keys add that even an admin who
  *can* rewrite the file cannot replace old lines with a consistent forgery; they can only cut the
  file short (and then every entry after the cut is uncovered and older than the grace period,
  and the chain's own ``audit.checkpoint`` entries name lines the file no longer has — unless the
  admin also rewrote those, which the surviving checkpoints pin down) or start a new key chain,
  which fails verification until the DPO attests.
* **The newest entries — since the last published checkpoint, at most one interval (5 minutes by
  default) — are not protected**: an admin can delete or change them and sign a matching
  checkpoint with the key they stole. Shorter intervals shrink the window; nothing closes it.
* **The admin controls the code that writes the log.** From the moment of compromise they can stop
  logging or log lies; checkpoints cannot show what was never written. They prove only that what
  was written before stayed as it was.
* **Verification must run somewhere the admin does not control**: the DPO's own checkout of the
  code, a read-only database account, the DPO's public key and their copy of the checkpoint file.
  A ``crm audit verify`` run on a compromised server can print anything.
* The app's signature on its own says only "written by someone holding the app's current key"; it
  is the DPO's attestations plus the key chain that make lines unforgeable after the fact.

Several hosts: the job runs on any worker, so ``CRM_AUDIT_SIGNING_KEY`` must be one file on storage
shared by the workers (readable by the app only); otherwise each host starts its own key chain.
Writers on one host are serialised with ``flock`` on ``DIR/.lock``.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app
from sqlalchemy import func, select

from crm import hooks
from crm.db import db, utcnow
from crm.jobs import job, job_context
from crm.security import audit
from crm.security.models import AccessLogEntry

FILE_NAME = "checkpoints.jsonl"
LOCK_NAME = ".lock"
FORMAT = 1
_DOMAIN = b"crm-audit-checkpoint-v1\n"  # signatures cover this prefix + the line without "sig"
_TAIL_BYTES = 64 * 1024
JOB_NAME = "audit_checkpoint"


class CheckpointError(Exception):
    """The checkpoint file or a key cannot be used; the message says why."""


# --- encoding ----------------------------------------------------------------------------------------

def _canon(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _signed_bytes(data: dict) -> bytes:
    return _DOMAIN + _canon({k: v for k, v in data.items() if k != "sig"}).encode("utf-8")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as hex."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey | str) -> str:
    """Short fingerprint for people: the first 16 hex digits of SHA-256 of the raw public key."""
    raw = bytes.fromhex(key) if isinstance(key, str) else bytes.fromhex(public_hex(key))
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Line:
    """One parsed line of the checkpoint file."""

    number: int  # 1-based position in the file
    raw: str
    data: dict

    @property
    def hash(self) -> str:
        return _sha256(self.raw)

    @property
    def kind(self) -> str:
        return self.data.get("type", "")


def _parse(raw: str, number: int) -> Line | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") not in ("checkpoint", "attestation"):
        return None
    return Line(number, raw, data)


def read_lines(directory: Path) -> tuple[list[Line], list[int]]:
    """All readable lines of ``DIR/checkpoints.jsonl`` and the numbers of unreadable ones."""
    path = Path(directory) / FILE_NAME
    if not path.exists():
        return [], []
    lines, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            raw = raw.rstrip("\n")
            if not raw:
                continue
            line = _parse(raw, number)
            (lines.append(line) if line else bad.append(number))
    return lines, bad


def _tail(path: Path) -> tuple[Line | None, Line | None]:
    """``(last readable line, last checkpoint line)``, reading only the end of the file when it can."""
    if not path.exists():
        return None, None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size > _TAIL_BYTES:
            fh.seek(size - _TAIL_BYTES)
            fh.readline()  # skip a partial line
        chunk = fh.read().decode("utf-8", errors="replace").split("\n")
    last = last_cp = None
    for raw in reversed(chunk):
        line = _parse(raw, 0) if raw else None
        if line is None:
            continue
        last = last or line
        if line.kind == "checkpoint":
            last_cp = line
            break
    if last_cp is None and size > _TAIL_BYTES:  # attestations only in the tail: read it all
        lines, _ = read_lines(path.parent)
        cps = [ln for ln in lines if ln.kind == "checkpoint"]
        return (lines[-1] if lines else None), (cps[-1] if cps else None)
    return last, last_cp


def latest(directory: Path) -> dict | None:
    """The newest checkpoint line of ``DIR/checkpoints.jsonl`` as a dict, or None (no checks)."""
    try:
        return (_tail(Path(directory) / FILE_NAME)[1] or Line(0, "", {})).data or None
    except OSError:
        return None


@contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(path: Path, raw: str) -> None:
    """Append one line (O_APPEND, fsync). A line cut short by a crash is closed off first."""
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        data = raw.encode("utf-8") + b"\n"
        if not new and path.stat().st_size:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_dir(path.parent)


# --- keys --------------------------------------------------------------------------------------------

def _pem_private(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file. Raises :class:`CheckpointError`."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (or a file holding its 64 hex digits)."""
    try:
        data = Path(path).read_bytes()
        if data.strip() and all(c in b"0123456789abcdefABCDEF" for c in data.strip()):
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.strip().decode()))
        key = serialization.load_pem_public_key(data)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def keygen(out: Path, passphrase: bytes | None = None, name: str = "dpo") -> tuple[Path, Path]:
    """Make the DPO's Ed25519 key pair in ``out``: ``<name>-ed25519.key`` (PKCS#8 PEM, mode 0600,
    encrypted when ``passphrase`` is given) and ``<name>-ed25519.pub`` (PEM). Never overwrites.
    Returns the two paths. Raises :class:`CheckpointError` when a file exists."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    priv_path, pub_path = out / f"{name}-ed25519.key", out / f"{name}-ed25519.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise CheckpointError(f"{p} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem_private(key, passphrase))
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path


def _app_key(key_path: Path, last_cp: Line | None) -> tuple[Ed25519PrivateKey, str | None]:
    """The key that signs the next checkpoint and, when a new key chain must start, why."""
    if last_cp is None:
        return Ed25519PrivateKey.generate(), "first checkpoint"
    wanted = last_cp.data.get("next_key")
    staged = key_path.with_name(key_path.name + ".next")
    for candidate in (key_path, staged):
        if candidate.exists():
            try:
                key = load_private_key(candidate)
            except CheckpointError:
                continue
            if public_hex(key) == wanted:
                if candidate == staged:  # a crash after the append, before the rename: finish it
                    os.replace(staged, key_path)
                return key, None
    why = "signing key missing" if not key_path.exists() else "signing key does not continue the file's key chain"
    return Ed25519PrivateKey.generate(), f"{why} (after line {last_cp.number})"


# --- writing -----------------------------------------------------------------------------------------

def _settings(app=None) -> tuple[Path, Path]:
    app = app or current_app
    return Path(app.config["CRM_AUDIT_CHECKPOINT_DIR"]), Path(app.config["CRM_AUDIT_SIGNING_KEY"])


def write_checkpoint(now: datetime | None = None, force: bool = False) -> dict | None:
    """Publish the current chain head as a signed line of ``CRM_AUDIT_CHECKPOINT_DIR/checkpoints.jsonl``
    and log it (``audit.checkpoint``). Returns the line as a dict, or None when nothing was appended
    since the last checkpoint (unless ``force``).

    The head is made durable first (:func:`crm.security.audit.durability_barrier`), so a crash can
    never leave a published checkpoint naming entries the database lost. If the app's signing key
    does not continue the file's key chain, a new chain is started (``genesis``) and an alert raised."""
    directory, key_path = _settings()
    path = directory / FILE_NAME
    with _locked(directory):  # the head is read under the lock: checkpoints in the file never go back
        seq, head_hash = audit.head()
        db.session.commit()  # end the read (on SQLite it holds the write lock)
        audit.durability_barrier()
        last, last_cp = _tail(path)
        if last_cp is not None and not force and _nothing_new(last_cp, seq):
            return None
        key, restart = _app_key(key_path, last_cp)
        next_key = Ed25519PrivateKey.generate()
        data = checkpoint_line(last, key, next_key, seq=seq, head_hash=head_hash, at=now or utcnow(), reason=restart)
        raw = _canon(data)
        staged = key_path.with_name(key_path.name + ".next")
        key_path.parent.mkdir(parents=True, exist_ok=True)
        _write_secret(staged, _pem_private(next_key))  # 1. the next key is safe on disk
        _append(path, raw)                              # 2. the line names it
        os.replace(staged, key_path)                    # 3. the used key is gone
        _fsync_dir(key_path.parent)
    del key
    audit.record("audit.checkpoint", detail=f"line={data['n']} seq={seq} hash={head_hash}"
                 + (f" genesis: {restart}" if restart else ""),
                 outcome="restarted" if restart and last_cp is not None else "ok",
                 actor=audit.system_actor(JOB_NAME))
    if restart and last_cp is not None:  # the DPO's package raises an alert (crm.dpo.hooks)
        hooks.fire("audit.checkpoint_restarted", line=data["n"], reason=restart)
    db.session.commit()
    return data


def checkpoint_line(last: Line | None, key: Ed25519PrivateKey, next_key: Ed25519PrivateKey, *, seq: int,
                    head_hash: str, at: datetime, reason: str | None = None) -> dict:
    """A signed checkpoint line following ``last``: signed with ``key``, announcing ``next_key``.
    ``reason`` set means a new key chain starts here (``genesis``)."""
    data = {"v": FORMAT, "type": "checkpoint", "n": (last.data["n"] + 1) if last else 1, "at": _iso(at),
            "seq": seq, "hash": head_hash, "prev": last.hash if last else audit.GENESIS, "key": public_hex(key),
            "next_key": public_hex(next_key), "genesis": reason is not None}
    if reason:
        data["reason"] = reason
    data["sig"] = key.sign(_signed_bytes(data)).hex()
    return data


def append_line(directory: Path, data: dict) -> Line:
    """Append ``data`` as a line of ``DIR/checkpoints.jsonl`` (no checks); returns it parsed."""
    raw = _canon(data)
    _append(Path(directory) / FILE_NAME, raw)
    return Line(0, raw, data)


def _nothing_new(last_cp: Line, seq: int) -> bool:
    """True when the chain holds nothing since ``last_cp`` but that checkpoint's own log entry."""
    cp_seq = last_cp.data.get("seq", -1)
    if seq == cp_seq:
        return True
    if seq == cp_seq + 1:
        action = db.session.execute(select(AccessLogEntry.action).where(AccessLogEntry.seq == seq)).scalar()
        db.session.commit()
        return action == "audit.checkpoint"
    return False


def attest(directory: Path, private_key: Ed25519PrivateKey, *, by: str = "", now: datetime | None = None) -> dict:
    """Append the DPO's attestation of the newest checkpoint: a line signed with the DPO's key that
    commits to the hash of the line before it (and so to the whole file). Raises
    :class:`CheckpointError` when there is no checkpoint yet. Call only after verifying."""
    directory = Path(directory)
    path = directory / FILE_NAME
    with _locked(directory):
        last, last_cp = _tail(path)
        if last_cp is None:
            raise CheckpointError(f"no checkpoint in {path} to attest")
        data = {"v": FORMAT, "type": "attestation", "n": last.data["n"] + 1, "at": _iso(now or utcnow()),
                "prev": last.hash, "checkpoint": last_cp.data["n"], "seq": last_cp.data["seq"],
                "hash": last_cp.data["hash"], "dpo_key": public_hex(private_key), "by": by[:80]}
        data["sig"] = private_key.sign(_signed_bytes(data)).hex()
        _append(path, _canon(data))
    return data


# --- verifying ---------------------------------------------------------------------------------------

@dataclass
class Report:
    """The outcome of :func:`verify_checkpoints`. ``problems`` empty means everything held."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    lines: int = 0
    checkpoints: int = 0
    attestations: int = 0
    anchored_through: int = 0  # line number up to which the DPO's key vouches
    last: dict | None = None
    #: the checkpoint line the newest attestation vouches for (checked with the DPO's key when one
    #: was given, else taken as written), and whether its signature was checked
    attested: dict | None = None
    attested_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def _bad(self, message: str, seq: int | None = None) -> None:
        self.problems.append(message)
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq


def _sig_ok(pub_hex: str, data: dict) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub_hex)).verify(bytes.fromhex(data["sig"]),
                                                                          _signed_bytes(data))
        return True
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False


def check_file(directory: Path, public_key: Ed25519PublicKey | None) -> tuple[Report, list[Line]]:
    """Check the checkpoint file alone: line chain, app key chain and signatures, DPO attestations."""
    rep = Report()
    lines, unreadable = read_lines(Path(directory))
    rep.lines = len(lines)
    for number in unreadable:
        rep.notes.append(f"line {number}: unreadable, ignored (a write cut short by a crash?)")
    dpo_hex = public_hex(public_key) if public_key is not None else None
    prev_hash, prev_n = audit.GENESIS, 0
    last_cp: Line | None = None
    genesis_after_anchor: Line | None = None
    cp_by_n: dict = {}
    for line in lines:
        d = line.data
        if d.get("prev") != prev_hash or d.get("n") != prev_n + 1:
            rep._bad(f"line {line.number}: does not follow the line before it (lines removed, inserted or edited)")
        prev_hash, prev_n = line.hash, d.get("n", prev_n + 1)
        if line.kind == "checkpoint":
            rep.checkpoints += 1
            if d.get("genesis"):
                if last_cp is not None:
                    rep.notes.append(f"line {line.number}: the app started a new key chain ({d.get('reason', '?')})")
                genesis_after_anchor = line
            elif last_cp is None or d.get("key") != last_cp.data.get("next_key"):
                rep._bad(f"line {line.number}: signed by a key the previous checkpoint did not announce (forged line?)",
                         d.get("seq"))
            if not _sig_ok(d.get("key", ""), d):
                rep._bad(f"line {line.number}: bad signature (edited or forged)", d.get("seq"))
            last_cp = line
            cp_by_n[d.get("n")] = d
        else:
            rep.attestations += 1
            if dpo_hex is None:
                rep.attested = cp_by_n.get(d.get("checkpoint"), rep.attested)
                continue
            if d.get("dpo_key") != dpo_hex:
                rep.notes.append(f"line {line.number}: attestation by another key ({fingerprint(d.get('dpo_key', '00'))}), ignored")
                continue
            if not _sig_ok(dpo_hex, d):
                rep._bad(f"line {line.number}: attestation signature does not verify with the DPO's key")
                continue
            rep.anchored_through = line.number
            rep.attested, rep.attested_checked = cp_by_n.get(d.get("checkpoint"), rep.attested), True
            genesis_after_anchor = None
    if last_cp is not None:
        rep.last = last_cp.data
    if dpo_hex is not None:
        if rep.anchored_through == 0:
            rep._bad(f"no checkpoint is attested with the DPO key {fingerprint(dpo_hex)}: run `crm audit attest`")
        elif genesis_after_anchor is not None:
            rep._bad(f"line {genesis_after_anchor.number}: a new app key chain began after the DPO's last attestation "
                     f"({genesis_after_anchor.data.get('reason', '?')}); not trusted until the DPO attests it")
    return rep, lines


def _check_attestation_age(rep: Report, cps: list[Line], max_age_days: float | None, now: datetime,
                           older_copy: bool) -> None:
    """Fail when the newest checkpoint the DPO attested is older than ``max_age_days`` (None: no
    limit); with no attestation at all, when the first checkpoint is. Every line after the newest
    attestation rests on the app's own key chain alone, and whoever took that key (an administrator
    of the app server) can rewrite the history it covers and re-sign it; a DPO who attests at least
    every ``max_age_days`` bounds how far back that reaches. ``older_copy``: only noted."""
    if max_age_days is None or not cps:
        return
    limit = timedelta(days=float(max_age_days))
    problem = None
    if rep.attested is not None:
        at = _parse_at(rep.attested.get("at"))
        if at is None or now - at > limit:
            age = f"{(now - at).total_seconds() / 86400:.1f} days old" if at is not None else "of unknown age"
            problem = (f"the newest checkpoint attested by the DPO (line {rep.attested.get('n')}, "
                       f"{rep.attested.get('at')}) is {age}, more than CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS="
                       f"{max_age_days:g}: everything after it rests on the app's own key, with which rewritten "
                       f"history can be re-signed; the DPO must check and attest (`crm audit attest`)")
    else:
        first_at = _parse_at(cps[0].data.get("at"))
        if first_at is None or now - first_at > limit:
            problem = (f"no checkpoint has been attested by the DPO in the {max_age_days:g} days "
                       f"(CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS) since line {cps[0].number} ({cps[0].data.get('at')}): "
                       f"the whole file rests on the app's own key; the DPO must check and attest (`crm audit attest`)")
    if problem is None:
        return
    if older_copy:
        rep.notes.append(problem + " (an older copy)")
    else:
        rep._bad(problem)


def _parse_at(value) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def verify_checkpoints(directory: Path, public_key: Ed25519PublicKey | None = None, *,
                       grace_s: float | None = None, older_copy: bool = False,
                       max_age_days: float | None | bool = True) -> Report:
    """Check the checkpoint file (see :func:`check_file`) and the database against it:

    * every checkpoint's ``(seq, hash)`` is in the chain — else newest entries were removed or
      history was rewritten between the last matching checkpoint and this one;
    * the chain's newest ``audit.checkpoint`` entry names a line the file still has, with the same
      ``seq`` and ``hash`` — else the file was cut short or rewritten;
    * no entry written more than ``grace_s`` ago (default ``CRM_AUDIT_CHECKPOINT_GRACE_S``, else
      2 × the interval + 10 min) is still newer than the last checkpoint — else checkpoints
      stopped (worker down?) or the file was cut. Measured from the entry's time to now: a
      checkpoint is written only when something is new, so after a quiet night the last one is
      old and that alone is no fault.

    * the newest checkpoint the DPO attested is at most ``max_age_days`` old (default
      ``CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS``; False or None: not checked, as ``crm audit attest``
      does before it attests) — see :func:`_check_attestation_age`. Without the DPO's public key the
      attestation lines are taken as written (the output then says nothing was checked against it).

    ``older_copy``: the file is a copy taken earlier (the DPO's own), so the last three checks only
    note what the copy does not cover."""
    rep, lines = check_file(directory, public_key)
    cps = [ln for ln in lines if ln.kind == "checkpoint"]
    if max_age_days is True:
        max_age_days = current_app.config["CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS"]
    _check_attestation_age(rep, cps, max_age_days or None, utcnow(), older_copy)
    chain_len, _ = audit.head()
    if not cps:
        if chain_len:
            rep._bad(f"no checkpoints in {Path(directory) / FILE_NAME}, but the chain has {chain_len} entries", 1)
        return rep
    in_db = audit.hashes_at([c.data["seq"] for c in cps if c.data.get("seq", 0) > 0])
    last_good = 0
    for cp in cps:
        seq, want = cp.data.get("seq", 0), cp.data.get("hash")
        if seq <= 0:
            continue
        have = in_db.get(seq)
        if have is None:
            rep._bad(f"checkpoint line {cp.number} ({cp.data.get('at')}) names entry {seq}, which is not in the chain: "
                     f"newest entries removed (the chain now has {chain_len})", min(seq, chain_len + 1))
            break
        if have != want:
            rep._bad(f"checkpoint line {cp.number} ({cp.data.get('at')}): entry {seq} has a different hash: history "
                     f"rewritten between entries {last_good + 1} and {seq}", last_good + 1)
            break
        last_good = seq
    # the chain remembers the newest checkpoint it wrote
    detail = db.session.execute(select(AccessLogEntry.detail).where(AccessLogEntry.action == "audit.checkpoint")
                                .order_by(AccessLogEntry.seq.desc()).limit(1)).scalar()
    if detail:
        fields = dict(part.split("=", 1) for part in detail.split() if "=" in part)
        by_n = {ln.data.get("n"): ln for ln in cps}
        try:
            n = int(fields.get("line", "0"))
        except ValueError:
            n = 0
        line = by_n.get(n)
        if n and line is None and n > max(by_n):
            message = f"the chain records checkpoint line n={n}, but the file ends at n={max(by_n)}"
            if older_copy:
                rep.notes.append(message + " (an older copy)")
            else:
                rep._bad(message + ": checkpoint file cut short", last_good + 1)
        elif line is not None and (str(line.data.get("seq")) != fields.get("seq") or line.data.get("hash") != fields.get("hash")):
            rep._bad(f"checkpoint n={n} in the file differs from what the chain says the app wrote", last_good + 1)
    # entries left uncovered for too long
    if grace_s is None:
        cfg = current_app.config
        grace_s = cfg["CRM_AUDIT_CHECKPOINT_GRACE_S"] or 2 * cfg["CRM_AUDIT_CHECKPOINT_EVERY_S"] + 600
    # An entry must be covered by a checkpoint within grace_s of being written. Measured from the
    # entry to now, not from the last checkpoint: after a quiet spell (no checkpoint is written
    # when nothing is new) the first new entries are recent, not late.
    limit = utcnow() - timedelta(seconds=grace_s)
    late, first_late = db.session.execute(select(func.count(), func.min(AccessLogEntry.seq))
                                          .where(AccessLogEntry.at < limit,
                                                 AccessLogEntry.seq > cps[-1].data["seq"],
                                                 # a checkpoint's own entry waits for the next
                                                 # real one (checked above, against the file)
                                                 AccessLogEntry.action != "audit.checkpoint")).one()
    if older_copy:
        newer = db.session.execute(select(func.count(), func.min(AccessLogEntry.seq))
                                   .where(AccessLogEntry.seq > cps[-1].data["seq"])).one()
        if newer[0]:
            rep.notes.append(f"{newer[0]} entries from entry {newer[1]} on are newer than this copy's last checkpoint")
    elif late:
        rep._bad(f"{late} entries from entry {first_late} on were written more than {grace_s:.0f} s ago and no "
                 f"checkpoint covers them yet (the last is {cps[-1].data['at']}): checkpoints stopped or the "
                 f"file was cut", first_late)
    db.session.commit()
    return rep


# --- the periodic job --------------------------------------------------------------------------------

@job(result_ttl_s=600)
def checkpoint_job() -> int | None:
    """Periodic job (crm.schedule, every ``CRM_AUDIT_CHECKPOINT_EVERY_S``): write a checkpoint
    (:func:`write_checkpoint`). Returns the line's ``seq`` or None when nothing was new. Safe to
    run twice."""
    with job_context():
        data = write_checkpoint()
        return data["seq"] if data else None
