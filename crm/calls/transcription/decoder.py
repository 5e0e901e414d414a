"""Whisper decoding of one encoded batch: generation, the fallback rule, timestamp segmentation.

The CTranslate2 model is driven directly (not ``WhisperModel.transcribe``): beam search with the
language fixed, no conditioning on previous text, output bounded by the window's length. An optional
vocabulary prompt (the hotline's own words, :mod:`crm.calls.vocabulary`) is given to every window the
way Whisper's ``initial_prompt`` is: ``<|startofprev|>`` + its tokens before the start-of-transcript
sequence (Radford et al. 2022, §4.2; faster-whisper's ``initial_prompt``/``hotwords``).
"""

from __future__ import annotations

import math
from difflib import SequenceMatcher
from dataclasses import dataclass

import ctranslate2
import numpy as np

from crm.calls.transcription.filters import compression_ratio, normalize_text
from crm.calls.transcription.options import TIME_PRECISION, WHISPER_WINDOW_S, MIN_RESUME_S, PipelineOptions


#: Whisper's decoder has 448 positions: the prompt and the output share them.
MAX_TARGET_POSITIONS = 448
#: a window's output repeating this many words in a row of the prompt copies it (see copies_prompt)
PROMPT_COPY_WORDS = 3
PROMPT_COPY_SIMILARITY = 0.6
#: Words of the prompt's frame (crm.calls.vocabulary.compose) and street types: not vocabulary of
#: their own, an IVR prompt or a voice message saying «оператор» or «улица» does not use the
#: hotline's words (see mentions_vocabulary).
PROMPT_FRAME_WORDS = frozenset({
    "оператор", "звонят", "про", "адреса", "улица", "проспект", "переулок", "площадь", "шоссе",
    "бульвар", "проезд", "тупик",
})


def prompt_ngrams(prompt: str) -> list[list[str]]:
    """The runs of :data:`PROMPT_COPY_WORDS` words of the prompt after its first sentence (the
    line's name and the operator, which a call does start with, may be repeated)."""
    rest = normalize_text(prompt.split(". ", 1)[1]).split() if ". " in prompt else []
    return [rest[i:i + PROMPT_COPY_WORDS] for i in range(len(rest) - PROMPT_COPY_WORDS + 1)]


def copies_prompt(text: str, ngrams: list[list[str]]) -> bool:
    """True when ``text`` has :data:`PROMPT_COPY_WORDS` words in a row like a run of ``ngrams``,
    each spelled at least :data:`PROMPT_COPY_SIMILARITY` alike (difflib ratio). Whisper copies its
    prompt where the audio is unclear (measured: «Звонят про КВС и стояк» in a greeting whose
    operator's name the prompt got wrong); such a window is decoded again without the prompt."""
    words = normalize_text(text).split()
    n = PROMPT_COPY_WORDS
    for i in range(len(words) - n + 1):
        run = words[i:i + n]
        for gram in ngrams:
            if all(a == b or SequenceMatcher(None, a, b).ratio() >= PROMPT_COPY_SIMILARITY
                   for a, b in zip(run, gram)):
                return True
    return False


def vocabulary_words(prompt: str) -> frozenset[str]:
    """The prompt's own words (names, terms, streets, the line's name), normalised: every word of
    three letters or more that is not in :data:`PROMPT_FRAME_WORDS`."""
    return frozenset(w for w in normalize_text(prompt).split()
                     if len(w) >= 3 and w not in PROMPT_FRAME_WORDS)


def _one_edit(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by at most one letter substituted, added or removed."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _like(word: str, vocab: str) -> bool:
    """``word`` is ``vocab`` or a form of it: for words of up to five letters (ГВС, Анна, стояк)
    one letter off with the same first letter («анны», «ана», «стояки» is not), for longer ones the
    same letters up to the last two (Russian endings: «садовой» for «садовая», «аварийная» for
    «аварийную»)."""
    if word == vocab:
        return True
    if len(vocab) <= 5:
        return word[:1] == vocab[:1] and _one_edit(word, vocab)
    return word.startswith(vocab[:-2]) and len(word) <= len(vocab) + 2


def mentions_vocabulary(text: str, vocab: frozenset[str]) -> bool:
    """True when ``text`` has a word like one of ``vocab`` (:func:`vocabulary_words`, :func:`_like`).

    Used for short mono clips (:attr:`PipelineOptions.prompt_first` False): they are decoded without
    the prompt, and again with it only where the first decoding heard one of the hotline's words.
    A prompt that does not apply to a clip only adds risk: on the shared sets' IVR prompts and read
    prose (no hotline words in them) it changed single words either way, and on average for the
    worse (bench/transcription.py, tune half, see options.PipelineOptions.prompt_first)."""
    if not vocab:
        return False
    for w in normalize_text(text).split():
        if len(w) >= 3 and any(_like(w, v) for v in vocab):
            return True
    return False


@dataclass
class Decoded:
    """One decoded window: text tokens with timestamp tokens, average log-probability per token,
    Whisper's no-speech probability and the decoded text."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    text: str


class Decoder:
    """Drives the CTranslate2 Whisper model of ``model`` (a :class:`faster_whisper.WhisperModel`) for one
    language: features, encoder, beam-search generation, fallback rule, timestamp segments, alignment."""

    def __init__(self, model, language: str, opts: PipelineOptions, prompt: str | None = None):
        # deferred: importing faster_whisper starts onnxruntime threads, and the web app and the RQ
        # parent, which fork, import this package (for probe()) without ever transcribing
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.opts = opts
        self.tok = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                             language=language)
        self.suppress = list(get_suppressed_tokens(self.tok, [-1]))
        self.plain_prompt = list(self.tok.sot_sequence)
        self.prompt = self.plain_prompt
        self.prompt_tokens: list[int] = []
        self.prompt_ngrams: list[list[str]] = []
        self.vocabulary: frozenset[str] = frozenset()
        if prompt and prompt.strip():
            self.vocabulary = vocabulary_words(prompt)
            # the prompt's words after its first sentence (the line's name and the operator, which the
            # call does start with): an output repeating three of them in a row copies the prompt
            self.prompt_ngrams = prompt_ngrams(prompt)
            # the last tokens are kept if it is too long (as Whisper keeps the most recent context)
            self.prompt_tokens = self.tok.encode(" " + prompt.strip())[-opts.prompt_max_tokens:]
            self.prompt = [self.tok.sot_prev, *self.prompt_tokens, *self.tok.sot_sequence]
        self.ts_begin = self.tok.timestamp_begin
        self.eot = self.tok.eot

    def features(self, audio: np.ndarray, frames: int = 3000) -> np.ndarray:
        # deferred: as in __init__ (faster_whisper starts threads at import)
        from faster_whisper.audio import pad_or_trim

        feats = self.model.feature_extractor(audio)[..., :-1]
        return pad_or_trim(feats, frames).astype(np.float32)

    def encoder_frames(self, samples: int, opts: PipelineOptions | None = None) -> int:
        """Mel frames given to the encoder for a window of ``samples`` samples; ``opts``: the buffer's
        options (:meth:`PipelineOptions.for_buffer`) when they differ from the decoder's."""
        o = opts or self.opts
        pad = o.encoder_pad_s
        if pad is None:
            return 3000
        need = max(samples / 160 + pad * 100, o.encoder_min_s * 100)
        return int(min(3000, max(100, math.ceil(need / 100) * 100)))

    def encode(self, feats: np.ndarray):
        return self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)), to_cpu=False
        )

    def copies_prompt(self, d: Decoded) -> bool:
        """Does this result repeat the vocabulary prompt instead of transcribing the audio
        (:func:`copies_prompt`)?"""
        return copies_prompt(d.text, self.prompt_ngrams)

    @property
    def has_prompt(self) -> bool:
        return self.prompt is not self.plain_prompt

    def mentions_vocabulary(self, d: Decoded) -> bool:
        """Does this (unprompted) result have one of the prompt's words (:func:`mentions_vocabulary`)?"""
        return mentions_vocabulary(d.text, self.vocabulary)

    def generate(
        self, enc, n: int, beam: int, content_s: float = WHISPER_WINDOW_S,
        repetition_penalty: float = 1.0, use_prompt: bool = True,
    ) -> list[Decoded]:
        # Bound the output by the audio length: speech rarely exceeds ~8 tokens/s, so a decoder
        # stuck in a repetition loop stops early instead of running to 448 tokens.
        max_new = int(min(440, self.opts.max_tokens_per_s * content_s + 16))
        prompt = self.prompt if use_prompt else self.plain_prompt
        results = self.model.model.generate(
            enc,
            [prompt] * n,
            beam_size=beam,
            patience=1.0,
            length_penalty=1.0,
            max_length=min(MAX_TARGET_POSITIONS, len(prompt) + max_new),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppress,
            max_initial_timestamp_index=50,
            repetition_penalty=repetition_penalty,
        )
        out = []
        for r in results:
            toks = list(r.sequences_ids[0])
            avg = r.scores[0] * len(toks) / (len(toks) + 1) if toks else -10.0
            out.append(Decoded(toks, float(avg), float(r.no_speech_prob), self.tok.decode(toks)))
        return out

    def coverage(self, d: Decoded, content_s: float) -> float:
        """Window seconds covered by the complete segments of a result (content_s if none
        is left open and the last one ends near the end of the audio)."""
        segs, resume = self.split_segments(d.tokens, content_s)
        return content_s if resume is None else resume

    def needs_fallback(self, d: Decoded, content_s: float = WHISPER_WINDOW_S,
                       opts: PipelineOptions | None = None) -> bool:
        """Should this window be decoded again (repetition loop, low confidence, or a
        first pass cheaper than the fallback that stopped long before the end)? ``opts``: the
        buffer's options (:meth:`PipelineOptions.for_buffer`) when they differ from the decoder's."""
        o = opts or self.opts
        if d.no_speech_prob > o.no_speech_threshold and d.avg_logprob < o.log_prob_threshold:
            return False  # silence: nothing to redo
        if looping(d, o):
            return True
        if o.fallback_beam == o.beam_size:
            return False
        if d.avg_logprob < o.fallback_logprob:
            return True
        return content_s - self.coverage(d, content_s) > o.fallback_uncovered_s

    def split_segments(
        self, tokens: list[int], content_s: float
    ) -> tuple[list[tuple[float, float, list[int]]], float | None]:
        """Timestamp-token segmentation of one window.

        Returns ``([(start, end, text_tokens)], resume_s)`` in window seconds. ``resume_s`` is
        None when the window was fully transcribed, else the time after the last complete
        segment: the decoder stopped with an open segment (that segment is dropped, as in
        Whisper's sequential decoding, and the audio from ``resume_s`` is decoded again).
        """
        segs: list[tuple[float, float, list[int]]] = []
        cur: list[int] = []
        start: float | None = None
        last_ts: float | None = None
        for t in tokens:
            if t >= self.ts_begin:
                ts = (t - self.ts_begin) * TIME_PRECISION
                last_ts = ts
                if start is not None and cur:
                    segs.append((start, ts, cur))
                    cur, start = [], None
                else:
                    start = ts
            elif t < self.eot:
                cur.append(t)
                if start is None:
                    start = segs[-1][1] if segs else 0.0
        if not segs and cur and last_ts is None:
            # no timestamps at all (rare): keep the text for the whole window
            return [(0.0, content_s, cur)], None
        if cur:
            # open segment at the end: resume after the last complete segment
            resume = segs[-1][1] if segs else (start or 0.0)
            if resume < MIN_RESUME_S:
                # cannot make real progress by resuming: keep the open segment as it is
                return segs + [(start if start is not None else resume, content_s, cur)], None
            return segs, resume
        # Closed, but the decoder may have stopped long before the end of the audio. All packed
        # audio passed the VAD, so resume after the last segment (Whisper would skip it).
        if segs and content_s - segs[-1][1] > 1.0:
            return segs, segs[-1][1]
        return segs, None

    def align(self, enc_np: np.ndarray, idx: list[int], token_lists: list[list[int]],
              num_frames: list[int]):
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[idx]))
        return self.model.find_alignment(self.tok, token_lists, sub, num_frames)


def looping(d: Decoded, opts: PipelineOptions) -> bool:
    """A repetition loop: the text compresses better than ``compression_ratio_threshold`` (Whisper's rule)."""
    text = d.text.strip()
    return bool(text) and compression_ratio(text) > opts.compression_ratio_threshold


def better(new: Decoded, old: Decoded, opts: PipelineOptions) -> bool:
    """True when ``new`` (a fallback decoding) should replace ``old``: it is not a repetition loop
    where ``old`` is, else it has the higher average log-probability."""
    if looping(old, opts) != looping(new, opts):
        return looping(old, opts)
    return new.avg_logprob > old.avg_logprob
