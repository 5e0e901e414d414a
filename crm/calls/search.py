"""Phrase search in call transcripts, for QA supervisors.

Transcripts are encrypted segment by segment (``crm.calls.models.Segment``), so there is no SQL
index to search: every candidate transcript is decrypted and matched in Python. A search is
therefore bounded by a period of call times (default the last ``CRM_CALL_SEARCH_DAYS`` [30] days,
UTC) and by ``CRM_CALL_SEARCH_MAX_CALLS`` [500] transcripts decrypted; calls are scanned newest
first and the result says when the bound cut the scan short and how far back it got.

**Matching** is the one the automatic QA checks use (:func:`crm.text_ru.lemma_tokens`): words are
compared through their pymorphy3 lemmas after lower-casing and ё → е, so «горячая вода» finds
«горячей воды» and «ещё» finds «еще»; the phrase's numbers are written in digits as the stored
text's are (:func:`crm.calls.transcription.numbers.normalise`), so «десять рабочих дней» finds «10
рабочих дней»; the phrase's words must follow one another inside one segment (a phrase split over
two segments is not found). Punctuation between words is ignored.

**Masked as QA sees it** (issue 18): each segment is matched as a QA reader is shown it
(:func:`crm.calls.transcript.present`): numbers in digits, and the citizen's phone numbers, names,
addresses and e-mail addresses masked; a masked stretch matches nothing, not even its label's word
(«телефон» does not find «[телефон]»), and breaks a phrase, so a search never finds, nor confirms, a
citizen's identifier. Word times come from the words that became the matched text.

**Who and why.** Supervisors and admins search every call; operators, the DPO and executors may
not (the DPO reads logs and consent records, not transcripts; operators see their own calls on the
call page). The search is processing for quality control, so it reads only calls whose citizen has
an active ``call_recording_qa`` consent (152-ФЗ ст. 6 ч. 1 п. 1, ст. 9): each call passes QA's
consent gate, asked through the ``call.qa_allowed`` hook (:func:`crm.calls.services.qa_allowed`,
answered by :func:`crm.qa.services.common.qa_permitted`, the gate the sample, the review queue,
evaluations and calibration use); other calls, and calls tied to no citizen, are not decrypted
and are counted in ``calls_skipped_no_consent``. A call whose recording was destroyed has no
transcript left (its rows deleted, their copies in backups under the call's deleted data key) and is
not read at all.

**No index of the speech.** Nothing derived from the transcript's words (lemmas, tokens, an
inverted index) is stored: each search decrypts the segments, which are encrypted under the call's
own data key (:attr:`crm.calls.models.Call.speech_owner_id`), so once the recording is destroyed
no copy of anything the search could match outlives it.

**Access log.** Each call whose transcript was decrypted gets one ``transcript.search`` entry (the
citizen, the call and appeal, field ``transcript``, purpose ``call_recording_qa``; the detail is
the number of hits, never the phrase), written in the search's own transaction and committed before
any result is returned.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from crm.calls import services as calls
from crm.calls import transcript, vocabulary
from crm.calls.models import Call, Segment
from crm.calls.transcription import numbers
from crm.i18n import N_, lazy_gettext as _l
from crm.text_ru import lemma_tokens, phrase_lemmas
from crm.db import db, utcnow
from crm.timeutil import local_tz, out_of_range
from crm.security import audit, crypto
from crm.security.permissions import require_role
from crm.users import services as users

SEARCH_ROLES = ("supervisor", "admin")
SPEAKERS = ("operator", "citizen", "unknown")
SPEAKERS_RU = {"operator": N_("оператор"), "citizen": N_("заявитель"), "unknown": N_("не определён")}
PURPOSE = "call_recording_qa"
MIN_PHRASE_LETTERS = 3  # a shorter phrase («в», «да») would match nearly every call
MAX_PHRASE_CHARS = 200
MAX_PHRASE_WORDS = 12
DEFAULT_LIMIT = 100  # hits returned
MAX_LIMIT = 500
DEFAULT_MAX_CALLS = 500  # a query built without the app (the app passes CRM_CALL_SEARCH_MAX_CALLS)
SNIPPET_CONTEXT = 60  # characters of context either side of the match
_BATCH = 100  # calls whose segments are loaded per query


class SearchError(ValueError):
    """Bad search input: a Russian message for the user, ``code`` for the API (answered 400)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class Hit:
    """One occurrence of the phrase.

    ``start``/``end``: seconds from the start of the recording of the matched words (from the word
    timestamps when the segment has them, ``exact`` True) or of the whole segment (``exact`` False);
    ``segment_start``/``segment_end``: the segment's bounds, seconds. ``snippet``: the segment's
    text around the match (at most ~``SNIPPET_CONTEXT`` characters either side, «…» where cut);
    ``highlight``: ``[a, b)`` character offsets of the match inside ``snippet``."""

    call_id: str
    call_at: datetime  # UTC
    appeal_id: str | None
    operator_id: int | None
    operator_name: str | None
    speaker: str
    start: float
    end: float
    segment_start: float
    segment_end: float
    exact: bool
    snippet: str
    highlight: tuple[int, int]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["call_at"] = self.call_at.isoformat()
        data["highlight"] = list(self.highlight)
        return data


@dataclass
class SearchResult:
    """What a search found and how much it read.

    ``start``/``end``: the period searched (UTC, ``[start, end)``); ``calls_scanned``: calls read
    (each whose segments were decrypted is logged; with a ``speaker`` filter a call with no segment
    of that speaker is counted but nothing of it decrypted); ``calls_matched``: those with a hit;
    ``calls_unreadable``: calls whose transcript failed to decrypt (e.g. the citizen's data key erased);
    ``calls_skipped_no_consent``: calls in the period left unread for want of QA consent;
    ``scan_limit_reached``: ``max_calls`` transcripts were read and older calls of the period were
    left unread, ``scanned_back_to`` then being the time (UTC) of the oldest call read;
    ``hit_limit_reached``: ``limit`` hits were found and the scan stopped there."""

    phrase: str
    start: datetime
    end: datetime
    speaker: str | None
    operator_id: int | None
    hits: list[Hit] = field(default_factory=list)
    calls_scanned: int = 0
    calls_matched: int = 0
    calls_skipped_no_consent: int = 0
    calls_unreadable: int = 0
    max_calls: int = DEFAULT_MAX_CALLS
    limit: int = DEFAULT_LIMIT
    scan_limit_reached: bool = False
    hit_limit_reached: bool = False
    scanned_back_to: datetime | None = None

    def as_dict(self) -> dict:
        """The API shape (times ISO 8601 with offset)."""
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {"query": {"q": self.phrase, "start": iso(self.start), "end": iso(self.end), "speaker": self.speaker,
                          "operator_id": self.operator_id, "limit": self.limit},
                "items": [h.as_dict() for h in self.hits],
                "calls_scanned": self.calls_scanned, "calls_matched": self.calls_matched,
                "calls_skipped_no_consent": self.calls_skipped_no_consent,
                "calls_unreadable": self.calls_unreadable, "max_calls": self.max_calls,
                "scan_limit_reached": self.scan_limit_reached, "hit_limit_reached": self.hit_limit_reached,
                "scanned_back_to": iso(self.scanned_back_to)}


# --- input -----------------------------------------------------------------------------------------

def check_phrase(phrase: str | None) -> tuple[frozenset[str], ...]:
    """The phrase's lemma sets (see :func:`crm.text_ru.phrase_lemmas`). Raises
    :class:`SearchError` when it is empty, shorter than :data:`MIN_PHRASE_LETTERS` letters, longer
    than :data:`MAX_PHRASE_CHARS` characters or :data:`MAX_PHRASE_WORDS` words."""
    phrase = (phrase or "").strip()
    if not phrase:
        raise SearchError(_l("Введите фразу для поиска."), "q_required")
    if len(phrase) > MAX_PHRASE_CHARS:
        raise SearchError(_l("Фраза длиннее %(max)s символов.", max=MAX_PHRASE_CHARS), "q_too_long")
    words = lemma_tokens(phrase)
    if sum(b - a for a, b, _ in words) < MIN_PHRASE_LETTERS:
        raise SearchError(_l("Фраза слишком короткая: нужно не меньше %(min)s букв.", min=MIN_PHRASE_LETTERS),
                          "q_too_short")
    if len(words) > MAX_PHRASE_WORDS:
        raise SearchError(_l("Во фразе больше %(max)s слов: сократите её.", max=MAX_PHRASE_WORDS), "q_too_long")
    # the stored text writes numbers in digits (crm.calls.transcription.numbers.normalise, as
    # save_transcript does): the phrase is written the same way, so «десять рабочих дней» and «в
    # течение десяти» find «10 рабочих дней», as «10 рабочих дней» does
    return phrase_lemmas(numbers.normalise(phrase))


def parse_bound(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A period bound from a query string: ``YYYY-MM-DD`` is a day in ``CRM_TIMEZONE`` (the start of
    that day, or with ``end`` the start of the next day, so the day is included); an ISO 8601
    date-time is taken as given (UTC when it has no offset). Empty: None. Returns UTC.
    Raises :class:`SearchError` (code ``invalid_<name>``)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), local_tz())
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):  # OverflowError: year 1 in Moscow is before datetime.min in UTC
        raise SearchError(_l("Неверная дата «%(value)s»: укажите дату в виде ГГГГ-ММ-ДД.", value=value[:40]),
                          f"invalid_{name}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if (err := out_of_range(moment)) is not None:
        raise SearchError(err.message, f"invalid_{name}")
    return moment.astimezone(timezone.utc)


def parse_args(args: Mapping[str, str]) -> dict:
    """Keyword arguments of :func:`search_transcripts` from a query string: ``q``, ``start``,
    ``end`` (see :func:`parse_bound`), ``speaker`` (``operator``/``citizen``/``unknown``, empty:
    any), ``operator_id`` (integer), ``limit`` (1–:data:`MAX_LIMIT`). Checks the phrase too, so
    nothing is scanned for bad input. Raises :class:`SearchError`."""
    phrase = (args.get("q") or "").strip()
    check_phrase(phrase)
    start = parse_bound(args.get("start"), "start")
    end = parse_bound(args.get("end"), "end", end=True)
    speaker = (args.get("speaker") or "").strip() or None
    if speaker is not None and speaker not in SPEAKERS:
        raise SearchError(_l("Неизвестная роль говорящего: выберите оператора, заявителя или «не определён»."),
                          "invalid_speaker")
    operator_id = None
    if (args.get("operator_id") or "").strip():
        try:
            operator_id = int(args["operator_id"])
        except ValueError:
            raise SearchError(_l("Неверный оператор."), "invalid_operator_id") from None
    limit = DEFAULT_LIMIT
    if (args.get("limit") or "").strip():
        try:
            limit = int(args["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise SearchError(_l("Число результатов — от 1 до %(max)s.", max=MAX_LIMIT), "invalid_limit")
    return {"phrase": phrase, "start": start, "end": end, "speaker": speaker, "operator_id": operator_id,
            "limit": limit}


# --- matching --------------------------------------------------------------------------------------

def _occurrences(tokens, pattern) -> list[tuple[int, int]]:
    """``[(first, last)]`` token indexes (inclusive) where ``pattern`` (lemma sets) occurs in
    ``tokens`` (``(start, end, lemmas)``), without overlaps."""
    n, out, i = len(pattern), [], 0
    while i + n <= len(tokens):
        if all(tokens[i + k][2] & pattern[k] for k in range(n)):
            out.append((i, i + n - 1))
            i += n
        else:
            i += 1
    return out


def _piece_times(pieces: list[dict], tokens) -> list[tuple[float, float] | None]:
    """Start and end (seconds) of each text token (``(start, end, lemmas)`` in the shown text), from
    the word pieces of :func:`crm.calls.transcript.present` (None for a token in no word piece)."""
    spans, pos = [], 0
    for p in pieces:
        end = pos + len(p["text"])
        if p.get("start") is not None:
            spans.append((pos, end, float(p["start"]), float(p["end"])))
        pos = end
    out = []
    for a, b, _ in tokens:
        hit = [(s, e) for pa, pb, s, e in spans if a < pb and pa < b]
        out.append((min(s for s, _ in hit), max(e for _, e in hit)) if hit else None)
    return out


def _snippet(text: str, a: int, b: int) -> tuple[str, tuple[int, int]]:
    """``text`` around ``[a, b)``, cut at spaces ~:data:`SNIPPET_CONTEXT` characters either side."""
    lo, hi = max(0, a - SNIPPET_CONTEXT), min(len(text), b + SNIPPET_CONTEXT)
    if lo > 0:
        space = text.find(" ", lo, a)
        lo = space + 1 if space >= 0 else lo
    if hi < len(text):
        space = text.rfind(" ", b, hi)
        hi = space if space >= 0 else hi
    head, tail = ("…" if lo > 0 else ""), ("…" if hi < len(text) else "")
    snippet = head + text[lo:hi].strip() + tail
    lead = len(text[lo:hi]) - len(text[lo:hi].lstrip())
    start = len(head) + (a - lo) - lead
    return snippet, (start, start + (b - a))


def _segment_hits(seg: Segment, pattern, streets=None, known=None,
                  keep_names: frozenset[str] = frozenset()) -> list[tuple[float, float, bool, str, tuple[int, int]]]:
    """``[(start, end, exact, snippet, highlight)]`` of the phrase in one segment (decrypts it).

    The segment is matched as a QA reader sees it (:func:`crm.calls.transcript.present` with the mask):
    the citizen's identifiers are masked, and the words of a masked stretch (its label too) match
    nothing and break a phrase, so no search finds or confirms a phone, name or address
    (issue 18); ``streets``: the register's street names, masked as on the page
    (:func:`crm.calls.vocabulary.register_streets`); ``known``: what the system holds of the call's
    citizen (:func:`crm.calls.services.known_identifiers`), masked as on the page; ``keep_names``: the
    forms of the call's operator's own name (:func:`crm.calls.transcript.operator_name_forms`), left
    unmasked as on the page, so a search finds the operator's name the page shows. Word times come from
    the segment's words when they align with the text."""
    shown = transcript.present({"start": seg.start, "end": seg.end, "speaker": seg.speaker, "channel": seg.channel,
                                "text": seg.text, "words": seg.words}, mask=True, streets=streets,
                               known=known, keep_names=keep_names)
    text = shown["text"]
    masked, pos = [], 0
    for p in shown["pieces"]:
        if p["mask"]:
            masked.append((pos, pos + len(p["text"])))
        pos += len(p["text"])
    tokens = [(a, b, frozenset() if any(a < mb and ma < b for ma, mb in masked) else lem)
              for a, b, lem in lemma_tokens(text)]
    found = _occurrences(tokens, pattern)
    if not found:
        return []
    times = _piece_times(shown["pieces"], tokens)
    out = []
    for first, last in found:
        a, b = tokens[first][0], tokens[last][1]
        snippet, highlight = _snippet(text, a, b)
        if times[first] is not None and times[last] is not None:
            out.append((times[first][0], times[last][1], True, snippet, highlight))
        else:
            out.append((seg.start, seg.end, False, snippet, highlight))
    return out


# --- the search ------------------------------------------------------------------------------------

def search_transcripts(phrase: str, *, user, start: datetime | None = None, end: datetime | None = None,
                       operator_id: int | None = None, speaker: str | None = None, limit: int = DEFAULT_LIMIT,
                       max_calls: int | None = None) -> SearchResult:
    """Find transcribed calls whose transcript contains ``phrase`` (word forms, case and ё/е
    ignored; consecutive words inside one segment).

    ``user``: who searches (supervisor or admin, else :class:`PermissionDenied`); ``start``/``end``:
    the period of call times, UTC, ``[start, end)`` (default the last ``CRM_CALL_SEARCH_DAYS`` days
    up to now); ``operator_id``: only this operator's calls; ``speaker``: only segments of
    ``operator``/``citizen``/``unknown``; ``limit``: hits returned at most (the scan stops there);
    ``max_calls``: transcripts decrypted at most (default and ceiling ``CRM_CALL_SEARCH_MAX_CALLS``).
    Calls are read newest first; only calls that pass the QA-consent gate (the citizen consents to
    ``call_recording_qa``).
    Every call decrypted is logged (``transcript.search``) and committed before the result is
    returned. Raises :class:`SearchError` for bad input, before anything is read."""
    require_role(user, *SEARCH_ROLES)
    pattern = check_phrase(phrase)
    if speaker is not None and speaker not in SPEAKERS:
        raise SearchError(_l("Неизвестная роль говорящего."), "invalid_speaker")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise SearchError(_l("Число результатов — от 1 до %(max)s.", max=MAX_LIMIT), "invalid_limit")
    cfg = current_app.config
    ceiling = int(cfg["CRM_CALL_SEARCH_MAX_CALLS"])
    max_calls = min(int(max_calls), ceiling) if max_calls else ceiling
    end = end or utcnow()
    start = start or end - timedelta(days=int(cfg["CRM_CALL_SEARCH_DAYS"]))
    if start >= end:
        raise SearchError(_l("Начало периода позже его конца."), "invalid_period")

    result = SearchResult(phrase=phrase.strip(), start=start, end=end, speaker=speaker, operator_id=operator_id,
                          max_calls=max_calls, limit=int(limit))
    q = (select(Call.id, Call.citizen_id, Call.appeal_id, Call.operator_id, Call.created_at)
         .where(Call.status == "done", Call.recording_destroyed_at.is_(None), Call.created_at >= start,
                Call.created_at < end)
         .order_by(Call.created_at.desc(), Call.id.desc()))
    if operator_id is not None:
        q = q.where(Call.operator_id == operator_id)
    actor = audit.Actor(user.id, user.username, user.role)
    consent: dict[str, bool] = {}
    names: dict[int, str] = {}
    keeps: dict[int, frozenset[str]] = {}  # each operator's own name forms, not masked (as on the call page)
    streets = vocabulary.register_streets()  # once per search: masked as the call page masks them
    known_memo: dict = {}  # each citizen's identifiers and appeal's house, read once per search (memory only)
    offset = 0
    try:
        while not (result.scan_limit_reached or result.hit_limit_reached):
            rows = db.session.execute(q.offset(offset).limit(_BATCH)).all()
            offset += len(rows)
            if not rows:
                break
            todo = []
            for row in rows:
                if row.citizen_id not in consent:  # the QA-consent gate, once per citizen
                    consent[row.citizen_id] = bool(row.citizen_id) and calls.qa_allowed(row)
                if not consent[row.citizen_id]:
                    result.calls_skipped_no_consent += 1
                elif len(todo) + result.calls_scanned < max_calls:
                    todo.append(row)
                else:
                    result.scan_limit_reached = True
                    break
            _scan(todo, pattern, speaker, result, names, actor, streets, known_memo, keeps)
        result.hits.sort(key=lambda h: (h.call_at, -h.start), reverse=True)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


def _scan(rows, pattern, speaker, result: SearchResult, names: dict[int, str], actor: audit.Actor,
          streets=None, known_memo: dict | None = None, keeps: dict[int, frozenset[str]] | None = None) -> None:
    """Decrypt and match the segments of the calls ``rows`` (newest first), logging each call. ``names``
    and ``keeps`` (each operator's display name and name forms left unmasked) are filled as operators
    are met, once per search."""
    if not rows:
        return
    keeps = {} if keeps is None else keeps
    known_memo = {} if known_memo is None else known_memo
    sq = select(Segment).where(Segment.call_id.in_([r.id for r in rows])).order_by(Segment.call_id, Segment.idx)
    if speaker is not None:
        sq = sq.where(Segment.speaker == speaker)
    by_call: dict[str, list[Segment]] = {}
    for seg in db.session.execute(sq).scalars():
        by_call.setdefault(seg.call_id, []).append(seg)
    missing = {r.operator_id for r in rows if r.operator_id is not None} - (names.keys() & keeps.keys())
    if missing:
        for u in users.by_ids(missing):
            names[u.id] = u.display_name
            # the operator's own name is not masked on the call page: nor here (calls.presented_segments)
            keeps[u.id] = transcript.operator_name_forms(u.full_name)
    for row in rows:
        if result.hit_limit_reached:
            break
        segments = by_call.get(row.id, [])
        result.calls_scanned += 1
        result.scanned_back_to = row.created_at
        if not segments:  # nothing of this speaker: nothing decrypted, nothing to log
            continue
        found, outcome = 0, "ok"
        try:
            # the citizen's own identifiers and their appeal's house, decrypted to mask them (logged as
            # this call's transcript.search below; kept in memory for this search only, never cached)
            known = calls.known_identifiers(row.citizen_id, row.appeal_id, memo=known_memo)
            keep = keeps.get(row.operator_id, frozenset())  # the operator's own name: shown, as on the page
            for seg in segments:
                for start, end, exact, snippet, highlight in _segment_hits(seg, pattern, streets, known, keep):
                    result.hits.append(Hit(
                        call_id=row.id, call_at=row.created_at, appeal_id=row.appeal_id, operator_id=row.operator_id,
                        operator_name=names.get(row.operator_id), speaker=seg.speaker, start=round(start, 3),
                        end=round(end, 3), segment_start=seg.start, segment_end=seg.end, exact=exact,
                        snippet=snippet, highlight=highlight))
                    found += 1
                    if len(result.hits) >= result.limit:
                        result.hit_limit_reached = True
                        break
                if result.hit_limit_reached:
                    break
        except crypto.DecryptError:  # logged as security.decrypt_failed by crm.security.crypto
            result.calls_unreadable += 1
            outcome = "failed"
        if found:
            result.calls_matched += 1
        audit.record("transcript.search", citizen_id=row.citizen_id, call_id=row.id, appeal_id=row.appeal_id,
                     fields=["transcript"], purpose=PURPOSE, outcome=outcome, detail=f"hits={found}", actor=actor)

