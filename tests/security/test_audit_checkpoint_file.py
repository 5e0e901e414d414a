"""The checkpoint file on its own: line chain, forward-secure app keys, the DPO's attestations."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm.security import checkpoints as cp

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def build(directory, n: int, *, dpo: Ed25519PrivateKey | None = None, attest_after: int | None = None):
    """``n`` checkpoints along one key chain; returns the app's unused next key (what a thief gets)."""
    key = Ed25519PrivateKey.generate()
    last = None
    reason = "first checkpoint"
    for i in range(1, n + 1):
        nxt = Ed25519PrivateKey.generate()
        last = cp.append_line(directory, cp.checkpoint_line(last, key, nxt, seq=i * 10, head_hash=f"{i:064x}",
                                                             at=T0 + timedelta(minutes=5 * i), reason=reason))
        key, reason = nxt, None
        if dpo is not None and attest_after == i:
            cp.attest(directory, dpo, by="dpo")
            last = _lines(directory)[-1]
    return key


def _lines(directory):
    return cp.read_lines(directory)[0]


def _rewrite(directory, lines: list[str]):
    (directory / cp.FILE_NAME).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def raw_lines(directory) -> list[str]:
    return (directory / cp.FILE_NAME).read_text(encoding="utf-8").splitlines()


def test_a_good_file_checks_and_is_anchored_by_the_dpo(tmp_path):
    dpo = Ed25519PrivateKey.generate()
    build(tmp_path, 5, dpo=dpo, attest_after=3)
    rep, lines = cp.check_file(tmp_path, dpo.public_key())
    assert rep.ok, rep.problems
    assert (rep.checkpoints, rep.attestations, rep.anchored_through) == (5, 1, 4)
    # without the DPO's key: consistent, but nothing vouches for it
    assert cp.check_file(tmp_path, None)[0].ok
    # with another key: not attested
    assert not cp.check_file(tmp_path, Ed25519PrivateKey.generate().public_key())[0].ok


def test_unattested_file_fails_with_the_public_key(tmp_path):
    dpo = Ed25519PrivateKey.generate()
    build(tmp_path, 2)
    rep, _ = cp.check_file(tmp_path, dpo.public_key())
    assert not rep.ok and "attest" in rep.problems[0]


@pytest.mark.parametrize("field, value", [("seq", 999), ("hash", "f" * 64), ("at", "2020-01-01T00:00:00+00:00")])
def test_an_edited_line_is_detected(tmp_path, field, value):
    build(tmp_path, 4)
    lines = raw_lines(tmp_path)
    d = json.loads(lines[1])
    d[field] = value
    lines[1] = json.dumps(d, sort_keys=True, separators=(",", ":"))
    _rewrite(tmp_path, lines)
    rep, _ = cp.check_file(tmp_path, None)
    assert not rep.ok and any("line 2" in p for p in rep.problems), rep.problems


def test_removed_and_reordered_lines_are_detected(tmp_path):
    build(tmp_path, 4)
    lines = raw_lines(tmp_path)
    _rewrite(tmp_path, lines[:1] + lines[2:])
    assert not cp.check_file(tmp_path, None)[0].ok
    _rewrite(tmp_path, [lines[0], lines[2], lines[1], lines[3]])
    assert not cp.check_file(tmp_path, None)[0].ok


def test_a_stolen_current_key_cannot_rewrite_the_past(tmp_path):
    """The thief holds the app's unused next key: they can append, but a re-signed old line fails."""
    dpo = Ed25519PrivateKey.generate()
    stolen = build(tmp_path, 4, dpo=dpo, attest_after=4)
    lines = raw_lines(tmp_path)
    parsed = _lines(tmp_path)
    # re-sign line 3 with a different head, using the stolen key, keeping the chain fields
    forged = cp.checkpoint_line(parsed[1], stolen, Ed25519PrivateKey.generate(), seq=30, head_hash="e" * 64,
                                at=T0 + timedelta(minutes=15))
    _rewrite(tmp_path, lines[:2] + [json.dumps(forged, sort_keys=True, separators=(",", ":"))])
    rep, _ = cp.check_file(tmp_path, dpo.public_key())
    assert not rep.ok, "a truncated file re-extended with the stolen key must not verify"
    # cutting the file and starting a fresh key chain is visible too
    _rewrite(tmp_path, lines[:2])
    fresh = Ed25519PrivateKey.generate()
    cp.append_line(tmp_path, cp.checkpoint_line(_lines(tmp_path)[-1], fresh, Ed25519PrivateKey.generate(), seq=30,
                                                head_hash="e" * 64, at=T0, reason="signing key missing"))
    rep, _ = cp.check_file(tmp_path, dpo.public_key())
    assert not rep.ok and any("new app key chain" in p or "attest" in p for p in rep.problems), rep.problems


def test_new_key_chain_after_attestation_needs_the_dpo(tmp_path):
    dpo = Ed25519PrivateKey.generate()
    build(tmp_path, 2, dpo=dpo, attest_after=2)
    last = _lines(tmp_path)[-1]
    cp.append_line(tmp_path, cp.checkpoint_line(last, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(),
                                                seq=30, head_hash="a" * 64, at=T0, reason="signing key missing"))
    rep, _ = cp.check_file(tmp_path, dpo.public_key())
    assert not rep.ok and "new app key chain" in rep.problems[0]
    cp.attest(tmp_path, dpo, by="dpo")
    assert cp.check_file(tmp_path, dpo.public_key())[0].ok


def test_a_line_cut_short_by_a_crash_is_ignored_and_the_next_append_is_clean(tmp_path):
    build(tmp_path, 2)
    with open(tmp_path / cp.FILE_NAME, "a", encoding="utf-8") as fh:
        fh.write('{"at":"2026-')  # crash mid-write
    rep, lines = cp.check_file(tmp_path, None)
    assert rep.ok and rep.notes
    last = lines[-1]
    cp.append_line(tmp_path, cp.checkpoint_line(last, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(),
                                                seq=30, head_hash="a" * 64, at=T0, reason="test"))
    assert len(cp.read_lines(tmp_path)[0]) == 3


def test_keygen_writes_a_private_key_only_the_owner_reads(tmp_path):
    priv, pub = cp.keygen(tmp_path / "dpo", passphrase=b"secret words")
    assert priv.stat().st_mode & 0o777 == 0o600
    key = cp.load_private_key(priv, b"secret words")
    assert cp.public_hex(key) == cp.public_hex(cp.load_public_key(pub))
    with pytest.raises(cp.CheckpointError):
        cp.load_private_key(priv, b"wrong")
    with pytest.raises(cp.CheckpointError):
        cp.keygen(tmp_path / "dpo")  # never overwrites
