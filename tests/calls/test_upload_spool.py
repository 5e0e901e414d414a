"""An uploaded recording is never plaintext on disk, not even while the request runs (issue 13, point 1;
re-audit: Werkzeug spools a file part over 500 KB to a temporary file in ``tempfile.gettempdir()``,
and the upload was staged in a plaintext unnamed file in ``recordings/incoming``).

A recording of loud noise (every 4 KiB window of its samples occurs once in the world) is uploaded
through the API and through the appeal page. From inside the request — when the service is about to
encrypt it into storage, while Werkzeug's spool and the staged copy are both open — and again after
it, every file of a fresh ``tempfile`` directory and of the recordings folder is read, named files
and unnamed ones (``O_TMPFILE``: reached through this process's open descriptors,
``/proc/self/fd``): none may hold a window of the samples. A body larger than ``MAX_CONTENT_LENGTH``
is answered 413 and leaves nothing behind, also when its size is not announced."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pytest

from crm.calls import services as calls
from tests.calls.test_recording_plaintext import _noise_wav, _windows
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory

if not Path("/proc/self/fd").is_dir():
    pytest.skip("needs /proc/self/fd to reach unnamed temporary files", allow_module_level=True)


def _open_files_under(dirs: list[Path]) -> dict[int, str]:
    """This process's open descriptors of regular files under ``dirs`` (unnamed ones included:
    their link reads ``<dir>/#<inode> (deleted)``)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if any(target.startswith(str(d) + os.sep) for d in dirs):
            out[int(fd)] = target
    return out


def _plaintext_in(dirs: list[Path], needles: list[bytes]) -> list[str]:
    """Files under ``dirs`` — named (walked) and unnamed (open descriptors, read with ``pread`` so
    their owners' positions do not move) — whose bytes hold one of ``needles``."""
    found = []
    for d in dirs:
        for dirpath, _dirs, names in os.walk(d):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and any(n in path.read_bytes() for n in needles):
                    found.append(str(path))
    for fd, target in _open_files_under(dirs).items():
        try:
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        except OSError:
            continue
        if any(n in data for n in needles):
            found.append(f"fd {fd}: {target}")
    return found


@pytest.fixture()
def spool_dirs(ctx, tmp_path, monkeypatch):
    """A fresh ``tempfile`` directory (Werkzeug's spool goes there) and a fresh recordings folder."""
    tmp, recordings = tmp_path / "tmp", tmp_path / "recordings"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setitem(ctx.config, "CRM_RECORDINGS_DIR", str(recordings))
    yield [tmp, recordings]
    from crm import jobs

    for q in jobs.QUEUES:
        jobs.queue(q).empty()


@pytest.fixture()
def inside(monkeypatch, spool_dirs):
    """Wraps :func:`crm.calls.services.store_staged` (and ``add_staged``): before the upload is
    encrypted into storage, the directories are scanned; each scan's findings and the open files
    under them are kept."""
    seen: list[tuple[list[str], dict[int, str]]] = []
    needles: list[bytes] = []

    def scanning(original):
        def wrapper(*args, **kwargs):
            seen.append((_plaintext_in(spool_dirs, needles), _open_files_under(spool_dirs)))
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(calls, "store_staged", scanning(calls.store_staged))
    monkeypatch.setattr(calls, "add_staged", scanning(calls.add_staged))
    return seen, needles


def _recording(needles: list[bytes]) -> bytes:
    wav = _noise_wav(40, rate=16000)  # 1.28 MB: well over Werkzeug's 500 KB in-memory limit
    needles.extend(_windows(wav))
    return wav


BOUNDARY = "crm-test-boundary-7f3a"


def _multipart(field: str, wav: bytes) -> dict:
    """Keyword arguments of a test-client POST of ``wav`` as the file part ``field``, the body built
    in memory: Werkzeug's test client would otherwise spool its own encoding of a large body to a
    plaintext temporary file in ``tempfile.gettempdir()`` (the client's side, not the app's)."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"call.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + wav + f"\r\n--{BOUNDARY}--\r\n".encode()
    return {"input_stream": io.BytesIO(body), "content_type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_an_api_upload_is_never_plaintext_on_disk(ctx, make_user, api_token, spool_dirs, inside):
    seen, needles = inside
    wav = _recording(needles)
    resp = ctx.test_client().post("/api/v1/calls", headers=api_token(make_user("operator")), **_multipart("file", wav))
    assert resp.status_code == 202, resp.get_data(as_text=True)[:500]
    assert len(seen) == 2  # store_staged, then add_staged inside it
    found, open_files = seen[0]
    tmp, recordings = spool_dirs
    # the scan saw the request's files: Werkzeug's spool in the tempfile directory, the staged copy
    assert any(t.startswith(str(tmp)) for t in open_files.values()), open_files
    assert any(t.startswith(str(recordings / "incoming")) for t in open_files.values()), open_files
    assert found == []
    assert _plaintext_in(spool_dirs, needles) == [] and _open_files_under(spool_dirs) == {}  # all closed after
    # what was stored is the recording, encrypted
    call = calls.get(resp.get_json()["id"])
    assert call.size_bytes == len(wav)
    with calls.decrypted_recording(call) as audio:
        assert audio.read() == wav
    assert [p.name for p in recordings.iterdir() if p.is_file()] == [f"{call.storage_key}.rec"]


def test_an_upload_on_the_appeal_page_is_never_plaintext_on_disk(ctx, make_user, spool_dirs, inside):
    seen, needles = inside
    wav = _recording(needles)
    op = make_user("operator")
    appeal = AppealFactory(citizen=CitizenFactory(), operator=op)
    resp = SharedContextClient(ctx, op).post(f"/appeals/{appeal.id}/calls", **_multipart("recording", wav))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert seen and all(files for _, files in seen), "the scan saw no file of the request"
    assert [found for found, _ in seen] == [[] for _ in seen]
    assert _plaintext_in(spool_dirs, needles) == []
    assert len(calls.for_appeal(appeal.id)) == 1


def test_too_large_an_upload_is_413_and_leaves_nothing(ctx, client, make_user, api_token, spool_dirs, monkeypatch,
                                                       inside):
    """Announced (Content-Length) or not (a chunked body, cut off by Werkzeug while it is parsed): 413,
    no call, no file, no descriptor left open."""
    from crm.calls.models import Call
    from crm.db import db

    seen, needles = inside
    monkeypatch.setitem(ctx.config, "MAX_CONTENT_LENGTH", 1024 * 1024)
    wav = _recording(needles)
    headers = api_token(make_user("operator"))
    resp = client.post("/api/v1/calls", headers=headers, **_multipart("file", wav))
    assert resp.status_code == 413 and resp.is_json and resp.get_json()["error"]["code"]
    resp = client.post("/api/v1/calls", headers=headers, **_multipart("file", wav),
                       environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    assert resp.request.content_length is None  # not announced: cut off while it is read
    assert resp.status_code == 413 and resp.is_json, resp.get_data(as_text=True)[:300]
    assert seen == []  # never reached the service
    assert db.session.query(Call).count() == 0
    assert _plaintext_in(spool_dirs, needles) == []
    assert _open_files_under(spool_dirs) == {}
    assert not [p for p in spool_dirs[1].rglob("*") if p.is_file()] if spool_dirs[1].exists() else True
