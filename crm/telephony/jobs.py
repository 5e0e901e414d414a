"""Background jobs of the telephony package. Each takes ids and is safe to run twice."""
from __future__ import annotations

import urllib.request

from crm.calls import services as calls
from crm.jobs import job, job_context
from crm.telephony import inbox, services, surge


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the allow-list: refused."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise OSError(f"redirect refused ({code})")


class _Capped:
    """A response stream that raises once more than ``limit`` bytes were read."""

    def __init__(self, raw, limit: int):
        self.raw, self.limit, self.seen = raw, limit, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n if n and n > 0 else 1024 * 1024)
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise OSError("recording larger than MAX_CONTENT_LENGTH")
        return chunk


@job(queue="default", timeout_s=900, retries=2, retry_intervals_s=(60, 300))
def fetch_recording(telephony_call_id: str, legacy_url: str | None = None) -> str:
    """Fetch the recording of the call record ``telephony_call_id`` from the address its ``recording``
    event gave (kept encrypted on the record, :func:`crm.telephony.services.recording_url_of`: the job's
    arguments, which sit in Redis and show in the job registries, hold only the id; ``legacy_url`` is
    read only for a job queued before that change), checked against ``CRM_TELEPHONY_RECORDING_URLS``
    again; no redirects; at most ``MAX_CONTENT_LENGTH`` bytes. Spools it encrypted
    (:func:`crm.calls.services.stage_upload`), stores it as the call's recording (the address is then
    emptied) and queues its transcription. Returns ``stored``, ``exists`` (the call has one: a second
    run), ``refused`` (not on the allow-list; the address is emptied) or ``missing`` (no record, or no
    address). A network error raises, so RQ retries; an invalid file (not audio, empty) raises
    :class:`crm.calls.services.CallError` and is not retried usefully."""
    with job_context() as app:
        call = services.by_id(telephony_call_id)
        if call is None:
            return "missing"
        if call.recording_call_id is not None:
            return "exists"
        url = services.recording_url_of(telephony_call_id) or legacy_url
        if not url:
            return "missing"
        if not services.url_allowed(url):
            services.forget_recording_url(telephony_call_id)
            return "refused"
        opener = urllib.request.build_opener(_NoRedirect)
        timeout = float(app.config["CRM_TELEPHONY_FETCH_TIMEOUT_S"])
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "crm-telephony"}), timeout=timeout) as resp:
            staged = calls.stage_upload(_Capped(resp, int(app.config["MAX_CONTENT_LENGTH"])),
                                        url.rsplit("/", 1)[-1][:255] or "recording")
        stored = services.attach_fetched(telephony_call_id, staged)
        return "stored" if stored else "exists"


@job(queue="default", timeout_s=120)
def surge_check_job() -> bool:
    """Periodic (``queue-surge`` in :mod:`crm.schedule`, every ``CRM_QUEUE_SURGE_CHECK_EVERY_S``): look for
    a queue surge (:func:`crm.telephony.surge.detect`), so the supervisors are notified even when nobody
    has the queue board open; a surge already notified is not notified again. Returns True during a surge."""
    with job_context():
        return surge.detect() is not None


@job(queue="telephony", timeout_s=900, retries=3, retry_intervals_s=(5, 30, 120))
def drain_inbox() -> dict:
    """Build the PBX events waiting in the inbox into call records (:func:`crm.telephony.inbox.drain`,
    scheduled by the webhook when no drain holds the lease). Returns the counts. A database or Redis
    error puts the event back and raises, so RQ retries."""
    with job_context():
        return inbox.drain()


@job(queue="default", timeout_s=60)
def inbox_kick_job() -> bool:
    """Periodic (``telephony-inbox``, every ``CRM_TELEPHONY_INBOX_KICK_EVERY_S``): schedule a drain for
    events nobody is draining — left by a worker killed mid-drain, whose lease then expired
    (:func:`crm.telephony.inbox.kick`). True when one was scheduled."""
    with job_context():
        return inbox.kick()
