"""Automatic QA checks on a call transcript, shown to the reviewer as hints and used by sampling.

Each check takes the transcript segments (``{start, end, speaker, text}``, seconds) and returns
``{code, passed, detail, value, at_s}``: ``detail`` is a Russian sentence for the reviewer that
quotes only the configured phrases it found (never a word of the transcript: not the citizen's, not
the operator's name), ``value`` the measured figure (seconds, words per minute,
a share) or None, ``at_s`` where in the call the finding is (seconds) or None: for a phrase, the
matched word's own ``start`` from the segment's ``words`` (the segment's start without words), so that
a long merged segment of a mono call does not put the finding seconds early; the details' times and the
call page's seek links use it. A failed detail says first what is missing, then, after «. Найдено: »,
what was found.

| code | passes when | configuration (``CRM_QA_CHECKS[code]``) |
|---|---|---|
| ``greeting`` | in the first ``window_s`` the operator greets and names the line and themselves | ``window_s``, ``need`` (``both``: line and name, ``either``), phrase lists, ``fuzzy``, ``hotline_name`` |
| ``closing`` | one of the operator's last segments says goodbye | ``window_s``, ``last_segments``, ``phrases``, ``fuzzy`` |
| ``address`` | the operator asks for or repeats the address | ``phrases``, ``ask_words``, ``detail_words`` |
| ``callback_number`` | the operator asks for or confirms a callback number | ``phrases`` |
| ``forbidden_phrases`` | the operator uses none of the phrases | ``phrases`` |
| ``silence`` | no pause inside the call longer than ``max_s`` | ``max_s`` |
| ``overtalk`` | both sides talk at once for at most ``max_total_s`` in all | ``max_total_s``, ``min_overlap_s`` |
| ``talk_ratio`` | the operator's share of talk time is within [``min_share``, ``max_share``] | both |
| ``speech_rate`` | the operator speaks ``min_wpm``–``max_wpm`` words per minute | both, ``min_talk_s`` |

**Call scripts** (:mod:`crm.kb.scripts`, written by supervisors in the knowledge base): a script's
lines are what the checks look for. :func:`run` takes the checked lines of the scripts that apply to
the call (``script_lines``: ``[{number, stage, text, phrases, script}]``). An opening line must be said within
``greeting``'s window, a closing line (the appeal number, the farewell) in the second half of the call
or ``closing``'s tail, each as one of its «phrases» in any word form (with that check's ``fuzzy``); a
missed one fails that check and its detail names the line first («по сценарию не сказана строка 1
сценария «…»: …; …»).
Main-part lines are guidance for the operator and are not checked (the list of check codes is a stable
interface). Without a script every check behaves as before.

**The line's name**: ``greeting``'s ``hotline_name`` (``CRM_HOTLINE_NAME``, set by
:mod:`crm.qa.services.checkresults`) is the line's configured name, which the vocabulary prompt makes
the recogniser write in full («Горячая линия жилищно-коммунального хозяйства»): it names the line
(after ``line_names``) and says a script line whose phrase names the line («Горячая линия ЖКХ»). Every
phrase, configured or a script's, is also matched with the field's abbreviations written out or
abbreviated (:data:`crm.kb.scripts.ABBREVIATIONS`: ЖКХ, ГВС, ХВС, УК), so «линия ЖКХ» is said by
«линии жилищно-коммунального хозяйства» and the other way round.

Every check has ``enabled`` (default True) except ``greeting`` and ``closing``, which always run
(``GET /api/v1/calls/{id}`` promises them). ``talk_ratio`` and ``overtalk`` need speaker labels
(both ``operator`` and ``citizen`` segments) and ``speech_rate`` at least ``min_talk_s`` of operator
speech; otherwise they are left out of the result rather than guessed.

Phrases are matched on lemmas (pymorphy3), so word forms match: «Доброго дня» and «добрый день»,
«горячей линии» and «горячая линия», «сказала» and «сказал». Each token is compared through the set
of the lemmas of all its parses, so an ambiguous form (``всего`` → весь / всего) still matches.
The script checks (greeting, closing) also accept a near miss of a long word (``fuzzy``: difflib
ratio ≥ 0.85 for words of 6+ letters), because the recogniser garbles them: on the simulated
hot-water call Whisper base hears «операто, рано» for «оператор Анна». The phrase lists of the other
checks are matched exactly, so that a near miss does not accuse an operator of a forbidden phrase.

**Doubtful words** (issue 18): a segment may carry Whisper's ``words`` with their probability
(``probability``, or ``p`` as the API shows them). A phrase check whose phrase is found only
through words below ``unsure_p`` (default 0.5, ``CRM_WORD_UNSURE_P``'s default) is neither passed
nor failed but ``unsure`` (``state``; ``passed`` is False, so sampling still brings the call to a
reviewer): «здравствуйте» heard at 0.3 is a greeting to listen to, not a missing one, and a
forbidden phrase heard at 0.3 does not accuse the operator. Every result has ``state``:
``passed``, ``failed`` or ``unsure``. Without words every word counts as sure.

Which segments count for phrase checks and the speech rate: segments spoken by the ``operator``;
when the speaker is ``unknown`` (mono recording, no diarisation) any such segment counts too.
Segments labelled ``citizen`` never count: the checks judge the operator.

**Speakers not separated** (:func:`separated`): when no segment is labelled ``operator`` or ``citizen``
(a mono recording, a single-voice clip such as an IVR prompt), the words may be anybody's and the clip
may hold no operator at all. There a check of :data:`OPERATOR_CHECKS` that would fail is ``unsure``
instead, its detail ending with :data:`NOT_SEPARATED_NOTE`; what passes still passes (a greeting in
an ``unknown`` segment at the start is a greeting), and ``silence`` (a pause is anybody's) is judged
as usual.

**The three states** (``state``; the API's ``passed`` stays a boolean, True only for ``passed``):

- ``passed`` (✓ выполнено): what the check looks for was heard, surely;
- ``failed`` (✗ не выполнено): it was not, and the detail says first what is missing;
- ``unsure`` (? не уверено): neither can be said: the words were recognised with low confidence, or
  the speakers are not separated, or the recording holds no speech at all (:data:`NO_SPEECH`: silence,
  hold music; every check that looks for something the operator says is ``unsure`` then, not failed). A reviewer listens there; nothing counts it against the operator
  (the dashboard counts it apart from failures, an evaluation's answers are the reviewer's own), and
  the sampling rule ``checks_failed`` (``passed`` False) still brings the call to a reviewer.

**A doubtful transcript** (:func:`doubtful_words`): a fail is only as trustworthy as the transcript.
When more than half (:data:`DOUBTFUL_SHARE`) of the operator's words — of every word when the speakers
are not separated — have a probability below the word-doubt threshold (``greeting``'s ``unsure_p``,
``CRM_WORD_UNSURE_P``), a check of :data:`OPERATOR_CHECKS` that would fail is ``unsure``, its detail
ending «Речь распознана неуверенно (5 из 5 слов оператора с вероятностью ниже 0,5) — прослушайте
запись» (a bad line whose operator channel came out «с дранцузей, пистет, пистет…»); what passes still
passes, ``silence`` is judged as usual, and words without a probability do not count.

**Address** (``address``): an address word counts only where it looks like a clarification: in a
question or request (a sentence ending with «?», or with one of ``ask_words``: какой, назовите,
уточните …) or beside a house, flat or number (another of ``detail_words``, or a numeral): «Улица
Садовая, дом пять», «Какой у вас адрес?», but not «…и пошла через улицу».

**Timing from words** (issue 18): ``silence`` and ``overtalk`` take speech to be where the segments'
``words`` are (their ``start``–``end``; words of one segment closer than :data:`WORD_GAP_S` are one
stretch), not the segments' spans: a pause between two words of one long segment (a mono call, merged
turns) is a pause, and a segment that runs on through silence does not talk over the other side. A
segment without words counts from its ``start`` to its ``end``, as before. ``talk_ratio`` and
``speech_rate`` still measure segment spans.

Thresholds: pauses over 10 s and an operator share of talk time over 70 % are the usual contact-
centre warning levels; the speech-rate band 70–180 words per minute is wide on purpose (Russian
conversational speech runs ~120–160 wpm, and segment times include short pauses, so measured
rates are lower than articulation rates).
"""
from __future__ import annotations

import copy
import re
from functools import lru_cache

from crm import text_ru
from crm.i18n import N_, format_number
from crm.kb import scripts

def _num(value: float, digits: int | None = 1) -> str:
    """A figure of a detail as Russian text writes it, with the decimal comma, as the call page writes
    durations (:func:`crm.i18n.format_number`, the ``number`` filter): «17,8», «0,38»; ``digits=None``:
    no trailing zeros («10», «2,5»), for a configured limit."""
    return format_number(value, digits, locale="ru")


GREETING_WINDOW_S = 20.0  # the greeting is expected in the first ~20 s of the call (seconds)
CLOSING_WINDOW_S = 30.0  # the closing is expected in the last ~30 s ...
CLOSING_LAST_SEGMENTS = 3  # ... or in the last three segments, whichever reaches further back

GREETINGS = ("здравствуйте", "добрый день", "день добрый", "добрый вечер", "доброе утро")
# Naming the line, and the operator followed by a name («оператор Анна», «меня зовут Анна»).
LINE_NAMES = ("горячая линия", "линия жкх", "диспетчерская служба", "аварийно-диспетчерская служба")
OPERATOR_NAMES = ("оператор", "меня зовут")  # must be followed by at least one more word
CLOSINGS = ("до свидания", "всего доброго", "всего хорошего", "хорошего дня", "спасибо за обращение",
            "спасибо за ваше обращение")
ADDRESS_PHRASES = ("адрес", "улица", "проспект", "переулок", "шоссе", "бульвар", "квартира", "номер дома")
# An address word counts as a clarification only in a question or request («Какой у вас адрес?»,
# «Назовите адрес») or beside a house, flat or number («улица Садовая, дом пять»): «пошла через улицу»
# in narration is no clarification.
ADDRESS_ASK = ("какой", "где", "назвать", "уточнить", "сказать", "подсказать", "продиктовать", "повторить",
               "верно", "правильно")
ADDRESS_DETAILS = ("адрес", "улица", "проспект", "переулок", "шоссе", "бульвар", "дом", "корпус", "строение",
                   "квартира", "подъезд")
CALLBACK_PHRASES = ("телефон", "номер для связи", "контактный номер", "связаться", "перезвонить", "обратный звонок")
FORBIDDEN_PHRASES = ("не знаю", "не моя проблема", "это не ко мне", "не по адресу", "ничем не могу помочь",
                     "я же вам сказал", "успокойтесь", "не кричите", "ваши проблемы", "короче")

#: Default configuration of every check; ``CRM_QA_CHECKS`` overrides keys per check.
DEFAULTS: dict[str, dict] = {
    "greeting": {"enabled": True, "window_s": GREETING_WINDOW_S, "need": "both", "greetings": GREETINGS,
                 "line_names": LINE_NAMES, "operator_names": OPERATOR_NAMES, "fuzzy": 0.85, "hotline_name": ""},
    "closing": {"enabled": True, "window_s": CLOSING_WINDOW_S, "last_segments": CLOSING_LAST_SEGMENTS,
                "phrases": CLOSINGS, "fuzzy": 0.85},
    "address": {"enabled": True, "phrases": ADDRESS_PHRASES, "ask_words": ADDRESS_ASK, "detail_words": ADDRESS_DETAILS},
    "callback_number": {"enabled": True, "phrases": CALLBACK_PHRASES},
    "forbidden_phrases": {"enabled": True, "phrases": FORBIDDEN_PHRASES},
    # (every phrase check also takes ``unsure_p``: see UNSURE_P)
    "silence": {"enabled": True, "max_s": 10.0},
    "overtalk": {"enabled": True, "max_total_s": 3.0, "min_overlap_s": 0.3},
    "talk_ratio": {"enabled": True, "min_share": 0.2, "max_share": 0.7},
    "speech_rate": {"enabled": True, "min_wpm": 70.0, "max_wpm": 180.0, "min_talk_s": 10.0},
}
CODES = tuple(DEFAULTS)
#: A phrase found only through words whose probability is below this is ``unsure`` (per check: ``unsure_p``).
UNSURE_P = 0.5
STATES = ("passed", "failed", "unsure")
ALWAYS = ("greeting", "closing")  # other tools read these two from GET /api/v1/calls/{id}: never disabled
LABELS = {"greeting": N_("Приветствие с названием линии и именем"), "closing": N_("Завершающая фраза"),
          "address": N_("Адрес"), "callback_number": N_("Телефон для связи"),
          "forbidden_phrases": N_("Недопустимые фразы"), "silence": N_("Долгие паузы"), "overtalk": N_("Перебивание"),
          "talk_ratio": N_("Доля речи оператора"), "speech_rate": N_("Темп речи")}
#: The scorecard criterion each check is a hint for (default scorecard codes).
HINT_CRITERIA = {"greeting": "greeting", "closing": "closing", "address": "problem_identified",
                 "callback_number": "problem_identified", "forbidden_phrases": "politeness"}

_SPEAKERS = ("operator", "unknown")
#: The checks that judge what the operator said or did (all but ``silence``, which any pause fails).
OPERATOR_CHECKS = ("greeting", "closing", "address", "callback_number", "forbidden_phrases", "overtalk",
                   "talk_ratio", "speech_rate")
# a sentence of its own, so that it does not read as part of what a detail found («… Найдено: …»)
NOT_SEPARATED_NOTE = ". Говорящие в записи не разделены: неизвестно, кто это сказал или не сказал, — прослушайте запись"
#: The detail of a check that cannot be judged because the recording holds no speech (silence, hold music):
#: ``unsure``, like a check on unseparated speakers — nothing was heard, so nothing is pinned on the operator.
NO_SPEECH = "в записи нет речи — проверить нельзя"


def _no_speech(code: str) -> dict:
    """``code``'s result on a transcript without speech: ``unsure`` with :data:`NO_SPEECH`."""
    return _result(code, False, NO_SPEECH, unsure=True)


def _has_speech(segments: list[dict]) -> bool:
    return any((s.get("text") or "").strip() for s in segments)


def separated(segments: list[dict]) -> bool:
    """Whether the transcript tells the speakers apart: some segment with text is labelled ``operator``
    or ``citizen`` (a stereo call's channel map). A mono recording or a single-voice clip (an IVR
    prompt) has every segment ``unknown``."""
    return any((s.get("speaker") or "unknown") in ("operator", "citizen") and (s.get("text") or "").strip()
               for s in segments)


#: A transcript is doubtful when more than this share of the judged words (the operator's, or every word
#: when the speakers are not separated) have a probability below the word-doubt threshold (:func:`doubtful_words`).
DOUBTFUL_SHARE = 0.5


def doubtful_words(segments: list[dict], unsure_p: float = UNSURE_P) -> tuple[int, int]:
    """``(doubtful, total)``: how many of the judged words of ``segments`` Whisper gave a probability
    below ``unsure_p``, and how many judged words carry a probability at all. The judged words are the
    ``words`` of the ``operator``'s segments, or of every segment when the speakers are not separated
    (:func:`separated`); a word without a probability, or without a letter or digit, is not counted."""
    apart = separated(segments)
    doubtful = total = 0
    for s in segments:
        if apart and s.get("speaker") != "operator":
            continue
        for w in s.get("words") or []:
            p = _number(w.get("probability", w.get("p")))
            if p is None or not text_ru.WORD.search(str(w.get("word") or "").lower()):
                continue
            total += 1
            doubtful += p < unsure_p
    return doubtful, total


def _doubtful_note(doubtful: int, total: int, unsure_p: float, apart: bool) -> str:
    """The sentence a failed check's detail ends with on a doubtful transcript; on unseparated speakers
    :data:`NOT_SEPARATED_NOTE` follows it, and says to listen."""
    whose = "слов оператора" if apart else "слов записи"
    note = f". Речь распознана неуверенно ({doubtful} из {total} {whose} с вероятностью ниже {_num(unsure_p, None)})"
    return note + " — прослушайте запись" if apart else note


def _doubtful_transcript(result: dict, note: str) -> dict:
    """``result`` of an operator check on a doubtful transcript (:data:`DOUBTFUL_SHARE`): a failure
    becomes ``unsure`` (what was not heard may have been said and misheard), its detail ending with
    ``note``; a pass or an unsure result stays."""
    if result["state"] != "failed":
        return result
    return {**result, "passed": False, "state": "unsure", "detail": result["detail"] + note}


def _not_separated(result: dict) -> dict:
    """``result`` of an operator check on a transcript without speakers: a failure becomes ``unsure``
    (neither the operator's fault nor proven: the words heard may be the citizen's, or the clip may not
    be a conversation with an operator at all), its detail saying why; a pass or an unsure result stays."""
    if result["state"] != "failed":
        return result
    return {**result, "passed": False, "state": "unsure", "detail": result["detail"] + NOT_SEPARATED_NOTE}


def config(overrides: dict | None = None) -> dict[str, dict]:
    """:data:`DEFAULTS` with ``overrides`` (``{code: {key: value}}``, e.g. ``CRM_QA_CHECKS``)
    applied key by key. Unknown codes are ignored."""
    cfg = copy.deepcopy(DEFAULTS)
    for code, values in (overrides or {}).items():
        if code in cfg and isinstance(values, dict):
            cfg[code].update(values)
    return cfg


FUZZY_MIN_LEN = 6  # words shorter than this are matched exactly (by lemma) only


@lru_cache(maxsize=100_000)
def _similar(word: str, target: str, threshold: float) -> bool:
    """Whether ``word`` is a near miss of ``target`` (difflib ratio ≥ ``threshold``), for words of
    at least :data:`FUZZY_MIN_LEN` letters: a recogniser often drops or swaps a letter of a long
    word («операто» for «оператор», «здраствуйте»)."""
    from difflib import SequenceMatcher

    if len(target) < FUZZY_MIN_LEN or len(word) < FUZZY_MIN_LEN - 1:
        return False
    return SequenceMatcher(None, word, target).ratio() >= threshold


def _matches(token: tuple[str, frozenset[str]], want: tuple[str, frozenset[str]], fuzzy: float) -> bool:
    if token[1] & want[1]:
        return True
    return bool(fuzzy) and _similar(token[0], want[0], fuzzy)


def _find_at(tokens: list[tuple[str, frozenset[str]]], phrases, need_following_word: bool = False,
             fuzzy: float = 0.0, probs: list[float | None] | None = None,
             sure_p: float | None = None) -> tuple[str, float | None, int] | None:
    """``(phrase, p, i)``: the first phrase of ``phrases`` found in ``tokens``, the lowest probability of
    its words (None when unknown) and the index of its first token in ``tokens`` (for its time,
    :func:`_token_times`), or None. The phrase is returned as the configuration writes it,
    never as the transcript has it: a detail quotes no word of the recording (in a mono call a segment
    of ``unknown`` speaker can be the citizen's, and the word after «оператор» is a name; issue 13
    re-audit). When words carry probabilities the surest occurrence of any of the phrases is taken.
    With ``need_following_word`` the phrase must be followed by one more word (a name), shown as «…»;
    with ``fuzzy`` (0–1) a long word also matches a near miss (see :func:`_similar`). ``probs``: each
    token's probability (:func:`_token_probs`); an occurrence whose words all reach ``sure_p`` is
    sure, so the first phrase (in configuration order) found surely is taken."""
    best = None
    for phrase in phrases:
        label = f"{phrase} …" if need_following_word else phrase  # never the words heard
        for variant in scripts.variants(phrase):  # ЖКХ = жилищно-коммунальное хозяйство … (both ways)
            pattern = text_ru.pattern(variant)
            n = len(pattern)
            if not n:
                continue
            last_start = len(tokens) - n - (1 if need_following_word else 0)
            for i in range(last_start + 1):
                if all(_matches(tokens[i + k], pattern[k], fuzzy) for k in range(n)):
                    known = [p for p in (probs or [])[i:i + n] if p is not None]
                    p = min(known) if known else None
                    if p is None or (sure_p is not None and p >= sure_p):
                        return label, p, i  # sure: the first found, as always
                    if best is None or p > best[1]:
                        best = (label, p, i)
    return best


def _find(tokens: list[tuple[str, frozenset[str]]], phrases, need_following_word: bool = False,
          fuzzy: float = 0.0) -> str | None:
    """The first phrase of ``phrases`` found in ``tokens`` (as configured), or None (see :func:`_find_at`)."""
    found = _find_at(tokens, phrases, need_following_word, fuzzy)
    return found[0] if found else None


def phrase_label(words: str, phrases, need_following_word: bool = False, fuzzy: float = 0.0) -> str | None:
    """How a detail names what ``words`` (text, e.g. the words a detail stored before 49c845b quoted
    from a transcript) say: the first of ``phrases`` found in them as the configuration writes it
    (with `` …`` for the following word when ``need_following_word``: a name is never shown), or None. The same
    matching as the checks (:func:`_find_at`: lemmas, ``fuzzy`` near misses of long words);
    migration 0043 renames the old quotes with it."""
    return _find(text_ru.tokens(words), tuple(phrases), need_following_word, fuzzy)


def _aligned(s: dict) -> list[tuple[float | None, float | None]]:
    """``(p, start)`` of each token of the segment's text (as :func:`crm.text_ru.tokens` gives them), from
    the segment's ``words``: the words' tokens are aligned with the text's (difflib), so a text whose
    numbers were rewritten in digits still finds its other words; a token with no aligned word gets
    ``(None, None)`` (sure, time unknown)."""
    from difflib import SequenceMatcher

    text_toks = [w for w, _ in text_ru.tokens(s.get("text"))]
    out: list[tuple[float | None, float | None]] = [(None, None)] * len(text_toks)
    word_toks: list[tuple[str, float | None, float | None]] = []
    for w in s.get("words") or []:
        p = _number(w.get("probability", w.get("p")))
        start = _number(w.get("start"))
        word_toks += [(t, p, start) for t, _ in text_ru.tokens(str(w.get("word") or ""))]
    if word_toks:
        sm = SequenceMatcher(None, text_toks, [t for t, _, _ in word_toks], autojunk=False)
        for a, b, size in sm.get_matching_blocks():
            for k in range(size):
                out[a + k] = word_toks[b + k][1:]
    return out


def _number(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _token_probs(segments: list[dict]) -> list[float | None]:
    """The probability of each token of the segments' texts joined with spaces (:func:`_aligned`);
    None (sure) for a token with no aligned word."""
    return [p for s in segments for p, _ in _aligned(s)]


def _token_times(segments: list[dict]) -> list[float]:
    """Where each token of the segments' texts joined with spaces is said (seconds): its word's own
    ``start`` from the segment's ``words`` (:func:`_aligned`), else the segment's start. A detail
    and the player's seek point at the word, not at the start of a long (merged) segment."""
    return [_start(s) if t is None else t for s in segments for _, t in _aligned(s)]


def _time_at(segments: list[dict], index: int) -> float:
    """The time of token ``index`` of the segments' joined texts (:func:`_token_times`); the first
    segment's start if the index is out of range."""
    times = _token_times(segments)
    if 0 <= index < len(times):
        return times[index]
    return _start(segments[0]) if segments else 0.0


def _doubt(p: float | None, cfg: dict) -> bool:
    """Whether a phrase found with lowest word probability ``p`` is doubtful (below ``unsure_p``)."""
    return p is not None and p < float(cfg.get("unsure_p", UNSURE_P))


def _sure_p(cfg: dict) -> float:
    return float(cfg.get("unsure_p", UNSURE_P))


def _unsure_note(p: float) -> str:
    return f"; распознано неуверенно (вероятность {_num(p, 2)}) — прослушайте запись"


#: How a failed detail sets what was found apart from what is missing (said first).
FOUND = ". Найдено: "


def _missing_found(missing: str, found: str) -> str:
    """A failed detail: what is missing first, then, labelled, what was found
    («не сказано: …. Найдено: прощание «всего доброго» на 50,9 с»)."""
    return f"{missing}{FOUND}{found}"


def _start(s: dict) -> float:
    return float(s.get("start") or 0.0)


def _end(s: dict) -> float:
    return float(s.get("end") or s.get("start") or 0.0)


def _counted(segments: list[dict]) -> list[dict]:
    return sorted((s for s in segments if (s.get("speaker") or "unknown") in _SPEAKERS
                   and (s.get("text") or "").strip()), key=_start)


def _result(code: str, passed: bool, detail: str, value: float | None = None, at_s: float | None = None,
            unsure: bool = False) -> dict:
    """A check's result; ``unsure``: neither passed nor failed (``state`` ``unsure``, ``passed`` False)."""
    state = "unsure" if unsure else "passed" if passed else "failed"
    return {"code": code, "passed": bool(passed) and not unsure, "state": state, "detail": detail,
            "value": None if value is None else round(float(value), 3),
            "at_s": None if at_s is None else round(float(at_s), 2)}


def _first_hit(segments: list[dict], phrases, cfg: dict | None = None) -> tuple[str, float, float | None] | None:
    """``(phrase, at, p)`` (the phrase as configured) of the first of ``segments`` (operator's) containing one of ``phrases``
    surely, else of the first containing one at all (``at``: when the phrase's first word is said,
    :func:`_time_at`; ``p``: its words' lowest probability)."""
    doubtful = None
    for s in _counted(segments):
        found = _find_at(text_ru.tokens(s["text"]), tuple(phrases), probs=_token_probs([s]), sure_p=_sure_p(cfg or {}))
        if found:
            if not _doubt(found[1], cfg or {}):
                return found[0], _time_at([s], found[2]), found[1]
            doubtful = doubtful or (found[0], _time_at([s], found[2]), found[1])
    return doubtful


# --- phrase checks ---------------------------------------------------------------------------------

def _line_names(cfg: dict) -> tuple[str, ...]:
    """What names the line for ``greeting`` (its configuration ``cfg``): ``line_names``, then the line's
    configured name (``hotline_name``, ``CRM_HOTLINE_NAME``: what the vocabulary prompt makes the
    recogniser write). Last, so that a detail keeps naming the usual phrase («горячая линия») when one
    is said, as details stored before did (migration 0043 reads them with ``line_names``)."""
    own = (cfg.get("hotline_name") or "").strip()
    return tuple(dict.fromkeys(tuple(cfg["line_names"]) + ((own,) if own else ())))


def greeting(segments: list[dict], cfg: dict | None = None) -> dict:
    """``greeting``: in the first ``window_s`` seconds the operator says a greeting (здравствуйте /
    добрый день / добрый вечер / доброе утро) and names the line («горячая линия») and themselves
    («оператор …», «меня зовут …»); with ``need="either"`` one of the two names is enough. The
    segments of the window are read as one text, since a transcriber may split them."""
    cfg = {**DEFAULTS["greeting"], **(cfg or {})}
    if not _has_speech(segments):
        return _no_speech("greeting")
    window_s = float(cfg["window_s"])
    window = [s for s in _counted(segments) if _start(s) < window_s]
    tokens = text_ru.tokens(" ".join(s["text"] for s in window))
    probs = _token_probs(window)
    fuzzy = float(cfg.get("fuzzy") or 0)
    phrases = {"greetings": tuple(cfg["greetings"]), "line_names": _line_names(cfg),
               "operator_names": tuple(cfg["operator_names"])}
    found = {key: _find_at(tokens, phrases[key], need_following_word=(key == "operator_names"), fuzzy=fuzzy,
                           probs=probs, sure_p=_sure_p(cfg)) for key in ("greetings", "line_names", "operator_names")}
    hello, line, name = (found[k][0] if found[k] else None for k in ("greetings", "line_names", "operator_names"))
    named = (line and name) if cfg["need"] == "both" else (line or name)
    # where the greeting (else the first introduction found) is said: its word's own time
    first = found["greetings"] or min((found[k] for k in ("line_names", "operator_names") if found[k]),
                                      key=lambda f: f[2], default=None)
    at = (_time_at(window, first[2]) if first else _start(window[0])) if window else None
    intro = ", ".join(f"«{x}»" for x in (line, name) if x)
    if hello and named:
        detail = f"приветствие «{hello}» и представление {intro} в первые {_num(window_s, None)} с"
        used = [found["greetings"]] + [found[k] for k in ("line_names", "operator_names") if found[k]]
        if cfg["need"] != "both" and line and name:
            # either name is enough: doubtful only when both are
            used = [found["greetings"], max(found["line_names"], found["operator_names"],
                                            key=lambda f: 1.0 if f[1] is None else f[1])]
        doubtful = [f[1] for f in used if _doubt(f[1], cfg)]
        if doubtful:
            return _result("greeting", False, detail + _unsure_note(min(doubtful)), at_s=at, unsure=True)
        return _result("greeting", True, detail, at_s=at)
    if hello:
        missing = " и ".join(x for x, got in (("название линии", line), ("своё имя", name)) if not got)
        return _result("greeting", False, _missing_found(f"оператор не назвал {missing}", f"приветствие «{hello}»"),
                       at_s=at)
    if line or name:
        return _result("greeting", False, _missing_found(f"нет приветствия в первые {_num(window_s, None)} с",
                                                         f"представление {intro}"), at_s=at)
    return _result("greeting", False, f"нет приветствия оператора в первые {_num(window_s, None)} с")


def closing(segments: list[dict], cfg: dict | None = None) -> dict:
    """``closing``: one of the operator's last segments (the last ``last_segments`` of the call, or
    any starting in its last ``window_s`` seconds) contains до свидания / всего доброго / хорошего
    дня / спасибо за обращение."""
    cfg = {**DEFAULTS["closing"], **(cfg or {})}
    ordered = sorted(segments, key=_start)
    if not _has_speech(ordered):
        return _no_speech("closing")
    call_end = max(_end(s) for s in ordered)
    tail_ids = {id(s) for s in ordered[-int(cfg["last_segments"]):]}
    tail = [s for s in _counted(ordered) if id(s) in tail_ids or _start(s) >= call_end - float(cfg["window_s"])]
    doubtful = None
    for s in reversed(tail):
        found = _find_at(text_ru.tokens(s["text"]), tuple(cfg["phrases"]), fuzzy=float(cfg.get("fuzzy") or 0),
                         probs=_token_probs([s]), sure_p=_sure_p(cfg))
        if found:
            at = _time_at([s], found[2])
            if not _doubt(found[1], cfg):
                return _result("closing", True, f"прощание «{found[0]}» на {_num(at)} с", at_s=at)
            doubtful = doubtful or (found, at)
    if doubtful:
        (words, p, _), at = doubtful
        return _result("closing", False, f"прощание «{words}» на {_num(at)} с" + _unsure_note(p), at_s=at, unsure=True)
    return _result("closing", False, "оператор не попрощался в конце звонка")


_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")


def _is_number(word: str) -> bool:
    """Digits, or a numeral in words («пять», «семнадцатый»)."""
    if word.isdigit():
        return True
    tag = text_ru.morph().parse(word)[0].tag
    return "NUMR" in tag or "Anum" in tag


def _clarifies(sentence: str, tokens: list[tuple[str, frozenset[str]]], at: int, n: int, cfg: dict) -> bool:
    """Whether the address phrase at ``tokens[at:at+n]`` of ``sentence`` looks like a clarification: the
    sentence is a question (ends with «?») or a request (an ``ask_words`` word: «назовите», «какой»),
    or it has one more address word (``detail_words``: «улица … дом») or a number."""
    if sentence.rstrip().endswith("?"):
        return True
    ask = frozenset(cfg.get("ask_words") or ())
    details = frozenset(cfg.get("detail_words") or ())
    for k, (word, lemmas) in enumerate(tokens):
        if lemmas & ask:
            return True
        if at <= k < at + n:
            continue
        if lemmas & details or _is_number(word):
            return True
    return False


def _address_hit(segments: list[dict], cfg: dict) -> tuple[tuple[str, float, float | None] | None, tuple | None]:
    """``(hit, loose)``: ``hit`` is ``(phrase, at, p)`` of the first clarification of the address in
    the counted segments (surely said, else the first doubtful one), ``loose`` ``(phrase, at)`` of
    the first address word said otherwise (narration), for the detail; ``at`` is when the word is
    said (its own time from the segment's ``words``, else the segment's start)."""
    phrases = tuple(cfg["phrases"])
    sure_p = _sure_p(cfg)
    doubtful = loose = None
    for s in _counted(segments):
        probs = _token_probs([s])
        times = _token_times([s])
        offset = 0
        for m in _SENTENCE.finditer(s["text"]):
            sentence = m.group()
            tokens = text_ru.tokens(sentence)
            sprobs = probs[offset:offset + len(tokens)]
            stimes = times[offset:offset + len(tokens)]
            offset += len(tokens)
            for phrase in phrases:
                for variant in scripts.variants(phrase):
                    want = text_ru.pattern(variant)
                    n = len(want)
                    for i in range(len(tokens) - n + 1) if n else ():
                        if not all(_matches(tokens[i + k], want[k], 0.0) for k in range(n)):
                            continue
                        at = stimes[i] if i < len(stimes) else _start(s)  # the word's own time
                        if not _clarifies(sentence, tokens, i, n, cfg):
                            loose = loose or (phrase, at)
                            continue
                        known = [p for p in sprobs[i:i + n] if p is not None]
                        p = min(known) if known else None
                        if p is None or p >= sure_p:
                            return (phrase, at, p), loose
                        doubtful = doubtful or (phrase, at, p)
    return doubtful, loose


def address(segments: list[dict], cfg: dict | None = None) -> dict:
    """``address``: the operator asks for or repeats the address: an address word (адрес, улица,
    квартира …) in a question or request, or with a house, flat or number (:func:`_clarifies`)."""
    cfg = {**DEFAULTS["address"], **(cfg or {})}
    if not _has_speech(segments):
        return _no_speech("address")
    hit, loose = _address_hit(segments, cfg)
    if hit:
        detail = f"оператор уточнил адрес («{hit[0]}») на {_num(hit[1])} с"
        if _doubt(hit[2], cfg):
            return _result("address", False, detail + _unsure_note(hit[2]), at_s=hit[1], unsure=True)
        return _result("address", True, detail, at_s=hit[1])
    detail = "адрес не уточнён: оператор не спросил и не повторил адрес"
    if loose:
        detail = _missing_found(detail, f"слово «{loose[0]}» на {_num(loose[1])} с, но не в вопросе и без дома или номера")
    return _result("address", False, detail, at_s=loose[1] if loose else None)


def callback_number(segments: list[dict], cfg: dict | None = None) -> dict:
    """``callback_number``: the operator asks for or confirms a number to call back (телефон,
    номер для связи, связаться, перезвонить …)."""
    cfg = {**DEFAULTS["callback_number"], **(cfg or {})}
    if not _has_speech(segments):
        return _no_speech("callback_number")
    hit = _first_hit(segments, cfg["phrases"], cfg)
    if hit:
        detail = f"оператор уточнил телефон для связи («{hit[0]}») на {_num(hit[1])} с"
        if _doubt(hit[2], cfg):
            return _result("callback_number", False, detail + _unsure_note(hit[2]), at_s=hit[1], unsure=True)
        return _result("callback_number", True, detail, at_s=hit[1])
    return _result("callback_number", False, "телефон для связи не уточнён: оператор не спросил номер для обратной связи")


def forbidden_phrases(segments: list[dict], cfg: dict | None = None) -> dict:
    """``forbidden_phrases``: none of the phrases operators must not use; ``value`` is how many
    segments contain one, ``at_s`` the first."""
    cfg = {**DEFAULTS["forbidden_phrases"], **(cfg or {})}
    hits, doubtful = [], []
    for s in _counted(segments):
        found = _find_at(text_ru.tokens(s["text"]), tuple(cfg["phrases"]), probs=_token_probs([s]), sure_p=_sure_p(cfg))
        if found:
            (doubtful if _doubt(found[1], cfg) else hits).append((found[0], _time_at([s], found[2]), found[1]))
    if not hits and doubtful:
        # heard only through doubtful words: not an accusation, a place to listen
        shown = "; ".join(f"«{w}» на {_num(t)} с" for w, t, _ in doubtful[:3]) + (" …" if len(doubtful) > 3 else "")
        return _result("forbidden_phrases", False, f"возможно, недопустимые фразы: {shown}"
                       + _unsure_note(min(p for _, _, p in doubtful)), value=0, at_s=doubtful[0][1], unsure=True)
    if not hits:
        return _result("forbidden_phrases", True, "недопустимых фраз нет", value=0)
    shown = "; ".join(f"«{w}» на {_num(t)} с" for w, t, _ in hits[:3]) + (" …" if len(hits) > 3 else "")
    return _result("forbidden_phrases", False, f"недопустимые фразы: {shown}", value=len(hits), at_s=hits[0][1])


# --- timing checks ---------------------------------------------------------------------------------

def _intervals(segments: list[dict]) -> list[tuple[float, float]]:
    """Merged ``[(start, end)]`` of ``segments`` with text, in order."""
    spans = sorted((_start(s), max(_start(s), _end(s))) for s in segments if (s.get("text") or "").strip())
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


#: Within one segment, words closer than this (seconds) are one stretch of speech: Whisper's word times
#: leave small gaps between most words of fluent speech, which are no pause and must not split an overlap
#: into pieces each shorter than ``overtalk``'s ``min_overlap_s``.
WORD_GAP_S = 0.3


def _word_spans(s: dict) -> list[tuple[float, float]] | None:
    """Where the segment ``s`` is speech, from its ``words`` (``[{start, end, word, ...}]``, seconds):
    its words' spans, those closer than :data:`WORD_GAP_S` joined; None when it has no timed word (the
    segment's own boundaries are all there is)."""
    spans = []
    for w in s.get("words") or []:
        a, b = _number(w.get("start")), _number(w.get("end"))
        if a is None or not str(w.get("word") or "").strip():
            continue
        spans.append((a, max(a, b if b is not None else a)))
    if not spans:
        return None
    joined: list[list[float]] = []
    for a, b in sorted(spans):
        if joined and a - joined[-1][1] < WORD_GAP_S:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    return [(a, b) for a, b in joined]


def _speech(segments: list[dict]) -> list[tuple[float, float]]:
    """Merged ``[(start, end)]`` where ``segments`` (with text) hold speech, in order: a segment's words
    where it has timed ones (:func:`_word_spans`), so that a pause inside one long segment (a mono call,
    or merged turns) is seen and the silence a segment's span includes is not counted as speech;
    else its own ``start``–``end``, as :func:`_intervals`. For the timing checks ``silence`` and
    ``overtalk``."""
    spans = []
    for s in segments:
        if not (s.get("text") or "").strip():
            continue
        spans += _word_spans(s) or [(_start(s), max(_start(s), _end(s)))]
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _total(intervals: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in intervals)


def _by_speaker(segments: list[dict], speaker: str) -> list[dict]:
    return [s for s in segments if s.get("speaker") == speaker]


def silence(segments: list[dict], cfg: dict | None = None) -> dict:
    """``silence``: the longest pause between speech inside the call (any speaker; before the first
    and after the last words is not counted) is at most ``max_s`` seconds. ``value``: the longest
    pause, ``at_s`` where it starts. Speech is where the segments' words are (:func:`_speech`), so a
    pause between two words of one segment counts; a segment without words counts whole."""
    cfg = {**DEFAULTS["silence"], **(cfg or {})}
    spans = _speech(segments)
    longest, at = 0.0, None
    for (_, prev_end), (start, _) in zip(spans, spans[1:]):
        if start - prev_end > longest:
            longest, at = start - prev_end, prev_end
    limit = float(cfg["max_s"])
    if longest > limit:
        return _result("silence", False, f"пауза {_num(longest)} с на {_num(at)} с (допустимо до {_num(limit, None)} с)",
                       value=longest, at_s=at)
    return _result("silence", True, f"пауз длиннее {_num(limit, None)} с нет (самая долгая {_num(longest)} с)", value=longest,
                   at_s=at)


def overtalk(segments: list[dict], cfg: dict | None = None) -> dict | None:
    """``overtalk``: the time both sides speak at once, summed over overlaps of at least
    ``min_overlap_s``, is at most ``max_total_s`` seconds. None without both speaker labels. Each
    side speaks where its segments' words are (:func:`_speech`): two segments whose spans overlap
    while their words do not (one side's segment runs on through silence) are no overtalk; a
    segment without words counts whole."""
    cfg = {**DEFAULTS["overtalk"], **(cfg or {})}
    ops, cits = _speech(_by_speaker(segments, "operator")), _speech(_by_speaker(segments, "citizen"))
    if not ops or not cits:
        return None
    overlaps = []
    for a1, b1 in ops:
        for a2, b2 in cits:
            d = min(b1, b2) - max(a1, a2)
            if d >= float(cfg["min_overlap_s"]):
                overlaps.append((max(a1, a2), d))
    total = sum(d for _, d in overlaps)
    limit = float(cfg["max_total_s"])
    first = min(overlaps)[0] if overlaps else None
    if total > limit:
        return _result("overtalk", False, f"стороны говорили одновременно {_num(total)} с ({len(overlaps)} раз), "
                       f"первый раз на {_num(first)} с", value=total, at_s=first)
    detail = (f"одновременная речь {_num(total)} с — в пределах {_num(limit, None)} с" if overlaps
              else "стороны не перебивали друг друга")
    return _result("overtalk", True, detail, value=total, at_s=first)


def talk_ratio(segments: list[dict], cfg: dict | None = None) -> dict | None:
    """``talk_ratio``: the operator's share of the talk time of both sides (``value``, 0–1) is
    within [``min_share``, ``max_share``]. None without both speaker labels."""
    cfg = {**DEFAULTS["talk_ratio"], **(cfg or {})}
    op = _total(_intervals(_by_speaker(segments, "operator")))
    cit = _total(_intervals(_by_speaker(segments, "citizen")))
    if op <= 0 or cit <= 0:
        return None
    share = op / (op + cit)
    lo, hi = float(cfg["min_share"]), float(cfg["max_share"])
    detail = f"оператор говорил {share:.0%} времени ({_num(op)} с из {_num(op + cit)} с)"
    if share > hi:
        return _result("talk_ratio", False, f"оператор говорил больше {hi:.0%} времени, заявителя мало слушали: "
                       f"{share:.0%} ({_num(op)} с из {_num(op + cit)} с)", value=share)
    if share < lo:
        return _result("talk_ratio", False, f"оператор говорил меньше {lo:.0%} времени: {share:.0%} "
                       f"({_num(op)} с из {_num(op + cit)} с)", value=share)
    return _result("talk_ratio", True, detail, value=share)


def speech_rate(segments: list[dict], cfg: dict | None = None) -> dict | None:
    """``speech_rate``: the operator's words per minute of their own talk time (``value``) is within
    [``min_wpm``, ``max_wpm``]. None when the operator spoke less than ``min_talk_s`` seconds."""
    cfg = {**DEFAULTS["speech_rate"], **(cfg or {})}
    mine = _counted(segments)
    talk = _total(_intervals(mine))
    if talk < float(cfg["min_talk_s"]):
        return None
    words = sum(text_ru.word_count(s["text"]) for s in mine)
    wpm = 60.0 * words / talk
    lo, hi = float(cfg["min_wpm"]), float(cfg["max_wpm"])
    detail = f"{wpm:.0f} сл./мин (слов: {words} за {_num(talk)} с речи)"
    if wpm > hi:
        return _result("speech_rate", False, f"речь быстрее {_num(hi, None)} сл./мин: {detail}", value=wpm)
    if wpm < lo:
        return _result("speech_rate", False, f"речь медленнее {_num(lo, None)} сл./мин: {detail}", value=wpm)
    return _result("speech_rate", True, detail, value=wpm)


# --- call scripts (crm.kb.scripts) ----------------------------------------------------------------

def _names_the_line(phrase: str, line_names: tuple[str, ...]) -> bool:
    """Whether a script phrase names the line: it holds one of ``line_names`` (abbreviations either
    way, :func:`crm.kb.scripts.variants`), as «горячая линия ЖКХ» holds «горячая линия»."""
    return _find(text_ru.tokens(phrase), line_names) is not None


def _line_said(tokens: list[tuple[str, frozenset[str]]], line: dict, fuzzy: float = 0.0,
               line_names: tuple[str, ...] = (), hotline_name: str = "") -> str | None:
    """The phrase (as configured) of ``line`` said in ``tokens``, or None. A phrase that names the line
    is also said by the line's configured name (``hotline_name``, ``CRM_HOTLINE_NAME``):
    a script written as «Горячая линия ЖКХ» accepts «Горячая линия жилищно-коммунального хозяйства»
    (the abbreviation table does that too) and whatever name the instance gives its line."""
    phrases = tuple(line.get("phrases") or ())
    said = _find(tokens, phrases, fuzzy=fuzzy)
    if said or not hotline_name:
        return said
    for phrase in phrases:
        if _names_the_line(phrase, line_names) and _find(tokens, (hotline_name,), fuzzy=fuzzy):
            return phrase
    return None


def _line_name(line: dict) -> str:
    """How a detail names a script line: «строка N сценария «title»: text» (the text without its final
    full stop or exclamation mark, since the detail goes on after it)."""
    text = (line.get("text") or "").rstrip(" .!;")
    return f"строка {line.get('number')} сценария «{line.get('script') or ''}»: {text}"


def _missed(lines: list[dict], tokens: list[tuple[str, frozenset[str]]], fuzzy: float = 0.0,
            line_names: tuple[str, ...] = (), hotline_name: str = "") -> list[dict]:
    return [line for line in lines if not _line_said(tokens, line, fuzzy, line_names, hotline_name)]


def _with_script(result: dict, missed: list[dict]) -> dict:
    """``result`` (greeting or closing) failed for the script lines in ``missed``, its detail naming them
    first (what is missing), then what the check itself found."""
    if not missed:
        return result
    names = "; ".join(_line_name(line) for line in missed)
    word = "не сказана" if len(missed) == 1 else "не сказаны"
    missing = f"по сценарию {word} {names}"
    if result["state"] == "failed":  # the check's own detail says first what else is missing
        detail = f"{missing}; {result['detail']}"
    else:  # what the check found (a farewell, a greeting), said apart from what is missing
        detail = _missing_found(missing, result["detail"])
    return {**result, "passed": False, "state": "failed", "detail": detail}


def _stage(script: list[dict] | None, stage: str) -> list[dict]:
    return [line for line in script or [] if line.get("stage") == stage and line.get("phrases")]


def script_opening(segments: list[dict], result: dict, script: list[dict] | None, cfg: dict | None = None) -> dict:
    """``greeting`` with the script's opening lines: each must be said within the greeting window."""
    lines = _stage(script, "opening")
    if not lines:
        return result
    cfg = {**DEFAULTS["greeting"], **(cfg or {})}
    window = [s for s in _counted(segments) if _start(s) < float(cfg["window_s"])]
    tokens = text_ru.tokens(" ".join(s["text"] for s in window))
    # the line's own name said counts for a script line that names the line (when one is configured)
    return _with_script(result, _missed(lines, tokens, float(cfg.get("fuzzy") or 0), _line_names(cfg),
                                        (cfg.get("hotline_name") or "").strip()))


def script_closing(segments: list[dict], result: dict, script: list[dict] | None, cfg: dict | None = None) -> dict:
    """``closing`` with the script's closing lines (the appeal number, the farewell): each must be said
    by the operator in the second half of the call or in ``closing``'s tail, whichever is longer."""
    lines = _stage(script, "closing")
    if not lines:
        return result
    cfg = {**DEFAULTS["closing"], **(cfg or {})}
    ordered = sorted(segments, key=_start)
    call_start, call_end = _start(ordered[0]), max(_end(s) for s in ordered)
    since = call_end - max(float(cfg["window_s"]), (call_end - call_start) / 2)
    tail_ids = {id(s) for s in ordered[-int(cfg["last_segments"]):]}
    tail = [s for s in _counted(ordered) if id(s) in tail_ids or _start(s) >= since]
    tokens = text_ru.tokens(" ".join(s["text"] for s in tail))
    return _with_script(result, _missed(lines, tokens, float(cfg.get("fuzzy") or 0)))


CHECKS = {"greeting": greeting, "closing": closing, "address": address, "callback_number": callback_number,
          "forbidden_phrases": forbidden_phrases, "silence": silence, "overtalk": overtalk,
          "talk_ratio": talk_ratio, "speech_rate": speech_rate}


def run(segments: list[dict], overrides: dict | None = None, script_lines: list[dict] | None = None) -> list[dict]:
    """All enabled checks over ``segments`` (``{start, end, speaker, text}``, seconds), in
    :data:`CODES` order. ``overrides``: ``CRM_QA_CHECKS``. ``script_lines``: the checked lines of the
    call's scripts (``[{number, stage, text, phrases, script}]``, :func:`crm.kb.services.script_lines_for`;
    None or empty: no script). Returns ``[{code, passed, detail, value, at_s}]``; a transcript
    without speech (silence, hold music: status ``no_speech``) gives just ``greeting`` and ``closing``,
    both ``unsure`` with :data:`NO_SPEECH` (there is nothing to judge, and nothing the operator can be
    blamed for: the recording may have failed, or the call may have been answered by no one). On a
    doubtful transcript (more than :data:`DOUBTFUL_SHARE` of the operator's words, or of all words when
    the speakers are not separated, below ``greeting``'s ``unsure_p``: :func:`doubtful_words`) a check of
    :data:`OPERATOR_CHECKS` that would fail is ``unsure``, its detail ending «Речь распознана неуверенно
    (… из … слов …) — прослушайте запись»."""
    cfg = config(overrides)
    if not _has_speech(segments):
        return [_no_speech(code) for code in ALWAYS]
    out = []
    apart = separated(segments)
    unsure_p = float(cfg["greeting"].get("unsure_p", UNSURE_P))
    doubtful, total = doubtful_words(segments, unsure_p)
    doubt_note = _doubtful_note(doubtful, total, unsure_p, apart) if doubtful > DOUBTFUL_SHARE * total else None
    for code in CODES:
        if code not in ALWAYS and not cfg[code].get("enabled", True):
            continue
        res = CHECKS[code](segments, cfg[code])
        if code == "greeting":
            res = script_opening(segments, res, script_lines, cfg[code])
        elif code == "closing":
            res = script_closing(segments, res, script_lines, cfg[code])
        if res is not None and code in OPERATOR_CHECKS and res["state"] == "failed":
            if doubt_note:
                res = _doubtful_transcript(res, doubt_note)
            if not apart:
                res = _not_separated({**res, "state": "failed"})
        if res is not None:
            out.append(res)
    return out
