"""Speech-to-text for call recordings: who said what, and nothing that was not said.

Pipeline (per window of the recording, default 5 minutes, so memory stays bounded):

1. **Decode** with :mod:`crm.calls.audio` (any PBX format, every channel kept, 16 kHz float32).
2. **Channels**: mono -> one stream, speaker ``unknown``. Two (or more) channels that carry the
   same signal (dual mono) are detected by correlation and treated as mono. Otherwise channel
   ``i`` gets ``channel_roles[i]`` (default ``operator``, ``citizen``).
3. **Speech activity**: Silero VAD (the ONNX model that ships inside ``faster_whisper``) on the
   mixdown with thresholds tuned for 8 kHz telephone speech; silence, hold music and line noise
   are dropped here and never reach Whisper.
4. **Turns with bleed suppression** (multi-channel only): in each 32 ms frame a channel counts as
   speaking when the VAD says speech, its energy is well above its own noise floor, and it is not
   more than ``bleed_db`` quieter than the loudest channel. Cross-talk/echo of the other side is
   20-30 dB down and is thus ignored, while true overlap (both talking) keeps both channels.
   Activity is smoothed and merged across short gaps into turns.
5. **Packing and batched decoding**: each turn is cut from the mixdown (or from its own
   channel where the other side talks over it), turns are packed in time order into <= 28 s
   Whisper windows separated by 0.5 s of silence, spread evenly over the fewest windows. The
   encoder sees each window's own length (+1 s, at least 15 s) instead of a padded 30 s, and
   two windows are encoded and decoded at the same time, each on its own single-thread
   CTranslate2 worker (beam search 2, language fixed, no conditioning on previous text, output
   bounded by the window's length). Packing skips silence and needs one encoder pass per
   ~28 s of speech. A window with low confidence, a loop, or a decoder that stopped more than
   3 s before the end is decoded again with beam 5 (loops with a repetition penalty); a window
   whose decoding still stops early is continued from its last timestamp.
6. **Words and speakers**: word timestamps come from Whisper's cross-attention alignment on the
   packed window and are mapped back to the recording's timeline and to the turn they fall in,
   so every segment carries its turn's speaker and channel.
7. **No invented text**: windows with high no-speech probability and low log-probability,
   segments with very low word confidence, decoder repetition loops and Whisper's phantom
   phrases («Продолжение следует…», «Субтитры сделал…», «Редактор субтитров…», «Спасибо за
   просмотр» …) standing alone are removed.

Memory: one 5-minute stereo window is 2 x 300 s x 16 kHz x 4 B = 38 MB of samples (a few
copies of it exist while it is analysed), the encoder needs up to ~75 MB of attention per
window, and the model ~200 MB resident (Whisper base int8; its two workers share the
weights). Measured on 2 cores: a 60-minute stereo call peaks at 859 MB RSS for the whole
process (777 MB with one 2-thread worker), and the peak does not grow with the length of the
call; freed heap is returned to the OS after every window.

Entry point: ``python -m crm.calls.transcriber FILE`` prints the JSON of
:meth:`TranscriptResult.to_json` (the object of ``crm transcribe FILE --json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from crm.calls.audio import TARGET_RATE, AudioDecodeError, iter_decode, probe
from crm.calls.whisper_model import load_model

__all__ = [
    "TranscriptResult",
    "PipelineOptions",
    "transcribe",
    "normalize_text",
    "is_phantom",
    "main",
]

SR = TARGET_RATE
FRAME = 512  # 32 ms at 16 kHz: Silero VAD frame, also our energy frame
FRAME_S = FRAME / SR
WHISPER_WINDOW_S = 30.0
TIME_PRECISION = 0.02
MIN_RESUME_S = 1.0  # continue a window after an early stop only if >= 1 s was transcribed
MAX_RESUMES = 8  # and at most this many times


# --------------------------------------------------------------------------------------
# Options and result
# --------------------------------------------------------------------------------------
@dataclass
class PipelineOptions:
    """Tuning knobs (defaults measured on ../shared/data/speech-ru and bad-audio)."""

    # decoding
    # Measured on speech-ru, 2 cores (bench/transcription.py, same run as plain faster-whisper
    # beam 5 on one 2-thread worker; machine shared with other work, so wall RTF varies
    # +-30 % between runs): calls WER 0.264 vs plain 0.311, speaker 1.000, RTF 0.045 vs 0.095
    # (x0.47), CPU-RTF 0.079 vs 0.137 (x0.57); before: WER 0.290, RTF x0.73-0.90, CPU x1.07
    # (beam 5, two 30 s windows per batch on 2 threads). festvox WER 0.144 vs 0.144 (RTF
    # x0.60), asterisk8k 0.183 vs 0.185 (RTF x0.46). 60-min stereo call: peak RSS 859 MB.
    # The gain comes from: the encoder seeing only the window's length (not 30 s), balanced
    # windows, beam 2 with a beam-5 fallback, and one window per worker on two 1-thread workers.
    # First pass: beam 2 (greedy costs ~4 WER points on clean read speech, festvox 0.184 vs
    # 0.144; beam 2 +0.004). Windows that fail the checks are redone with fallback_beam.
    beam_size: int = 2
    fallback_beam: int = 5
    # a first-pass window whose average token log-probability is below this is decoded again
    # with fallback_beam (the better result is kept); Whisper's own threshold is -1.0
    fallback_logprob: float = -1.0
    fallback_repetition_penalty: float = 1.3
    # a first pass (beam_size != fallback_beam) that leaves more than this many seconds of
    # the window untranscribed (decoder stopped early) is redone with fallback_beam too
    fallback_uncovered_s: float = 3.0
    # Whisper windows per encoder/decoder batch. The encoder's attention needs ~75 MB per
    # 30 s window (8 heads x 1500^2 floats). Batching pads every window of a batch to the
    # longest, so with a trimmed encoder input one window per batch is both cheaper and (on
    # calls) more accurate (WER 0.264 vs 0.290).
    batch_size: int = 1
    max_window_s: float = 28.0  # packed audio per Whisper window (15-20 s: WER 0.30-0.32)
    # Batches decoded at the same time, each on its own CTranslate2 worker (the workers share
    # the weights) with cpu_threads // parallel threads; 1 = one batch at a time on all
    # threads. Small decoder steps scale poorly over 2 threads, two 1-thread workers don't.
    parallel: int = 2
    # Spread a buffer's turns evenly over the fewest windows (e.g. 2 x 22 s rather than
    # 28 s + 16 s): with a trimmed encoder input the windows are then all short.
    balance_windows: bool = True
    # Encoder input: the window's own length plus this much padding (rounded up to whole
    # seconds) instead of always 30 s; None = always 30 s as plain Whisper. The encoder's cost
    # grows faster than linearly (30 s ~1.0 s, 20 s ~0.35-0.45 s, 10 s ~0.13 s on one core).
    encoder_pad_s: float | None = 1.0
    # but never less than this: with only a few seconds of context Whisper drops words
    # (asterisk8k first 30, 2-5 s prompts: WER 0.386 with 1 s of padding, 0.333 with a 6 s
    # minimum, 0.269 with 10 s or a full 30 s, 0.257 with 15 s)
    encoder_min_s: float = 15.0
    gap_s: float = 0.5  # silence inserted between packed turns
    # where a turn's audio is cut from: "mix" (mixdown), "channel" (its own channel) or
    # "auto" (mixdown, but the own channel where another channel talks over the turn)
    source: str = "auto"
    # speech activity (Silero on the mixdown; telephone speech often scores 0.3-0.6)
    vad_on: float = 0.25
    vad_off: float = 0.12
    min_speech_s: float = 0.2
    merge_gap_s: float = 0.6  # same-speaker activity separated by less is one turn
    mono_merge_gap_s: float = 1.0  # mono: speech separated by less is one region
    pad_s: float = 0.2
    # bleed suppression (multi-channel)
    bleed_db: float = 10.0  # a channel this much quieter than the loudest one is bleed
    floor_db: float = 10.0  # and it must be this much above its own noise floor
    abs_floor_db: float = -65.0
    dual_mono_corr: float = 0.98
    # hallucination filters
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_tokens_per_s: float = 12.0  # decoding budget per second of window audio
    # Confidence: where the VAD is sure there is speech (mean probability >= vad_sure) only
    # near-zero word confidence drops a segment; where the VAD is unsure, low-confidence
    # segments (mean word probability below min_word_prob, or min_word_prob_short for
    # segments of <= 3 words) are treated as noise read as words.
    vad_sure: float = 0.5
    min_word_prob_sure: float = 0.05
    min_word_prob: float = 0.3
    min_word_prob_short: float = 0.45
    # long recordings
    decode_window_s: float = 300.0  # audio decoded and analysed at a time (memory bound)


@dataclass
class TranscriptResult:
    """Outcome of :func:`transcribe`.

    ``segments``: ``{start, end, speaker, channel, text, words: [{start, end, word,
    probability}]}`` in seconds (rounded to ms), ordered by start; ``speaker`` is ``operator``,
    ``citizen`` or ``unknown``; ``channel`` is the channel index, or ``None`` for mono /
    dual-mono recordings.
    """

    status: str  # "done" or "no_speech"
    duration_s: float
    language: str
    rtf: float
    segments: list[dict] = field(default_factory=list)
    channels: int = 1
    sample_rate: int = 0
    dual_mono: bool = False
    processing_s: float = 0.0
    speech_s: float = 0.0  # audio time that went to Whisper (after VAD)

    def to_json(self) -> dict:
        """The ``crm transcribe FILE --json`` object."""
        return {
            "status": self.status,
            "duration_s": self.duration_s,
            "language": self.language,
            "rtf": self.rtf,
            "segments": [
                {
                    "start": s["start"],
                    "end": s["end"],
                    "speaker": s["speaker"],
                    "channel": s["channel"],
                    "text": s["text"],
                }
                for s in self.segments
            ],
        }

    @property
    def text(self) -> str:
        return " ".join(s["text"] for s in self.segments)


# --------------------------------------------------------------------------------------
# Text helpers: normalisation, phantom phrases, repetition
# --------------------------------------------------------------------------------------
_PUNCT_RE = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalize_text(text: str) -> str:
    """Lower-case, ё→е, punctuation removed, spaces collapsed (as the reference transcripts)."""
    text = text.lower().replace("ё", "е")
    return " ".join(_PUNCT_RE.sub(" ", text).split())


# Phrases Whisper produces from silence, music or noise (learned from subtitle credits of its
# training data). Sources: openai/whisper#928, #1783, #2378; faster-whisper#621;
# whisper.cpp#1724, #2286. Matched against the *whole* normalised segment (or sentence), so a
# citizen who really says «спасибо» keeps it: only the stand-alone stock phrase is removed.
_PHANTOM_FULL = [
    r"продолжение следует",
    r"спасибо за просмотр",
    r"спасибо что смотрите",
    r"спасибо за внимание",
    r"спасибо за просмотр и до новых встреч",
    r"до новых встреч",
    r"до встречи в следующем (видео|выпуске)",
    r"подписывайтесь на (наш )?канал.*",
    r"ставьте лайки.*",
    r"смотрите продолжение.*",
    r"аллах акбар",
    r"((играет|звучит|играет|спокойная|тихая|грустная|веселая|динамичная|торжественная"
    r"|тревожная|напряженная|печальная|легкая|фоновая|музыкальная|лирическая|\w+ая) )?"
    r"(музыка|заставка|мелодия|музыкальная заставка)",
    r"аплодисменты",
    r"смех",
    r"тишина",
    r"шум( \w+)?",
    r"гудки?",
    r"и все",
    r"всем пока",
    r"пока пока",
    r"thank you( for watching)?",
    r"thanks for watching",
    r"you",
    r"bye",
]
# Subtitle-credit boilerplate: never said on a hotline, removed even inside a segment.
_PHANTOM_ANYWHERE = [
    r"субтитры (сделал|делал|создавал|создал|подготовил|подогнал|добавил|выполнил|сделаны|создавались)\w*( \w+){0,4}",
    r"редактор субтитров( \w+){0,6}",
    r"корректор [а-я] [а-я]+",
    r"dimatorzok",
    r"dima torzok",
    r"amara org",
    r"субтитры (от|by)( \w+){0,3}",
    r"субтитры",
]
_PHANTOM_FULL_RE = re.compile(r"^(?:" + "|".join(_PHANTOM_FULL) + r")$")
_PHANTOM_ANY_RE = re.compile(r"(?:" + "|".join(_PHANTOM_ANYWHERE) + r")")


def is_phantom(text: str) -> bool:
    """True when ``text`` is nothing but one of Whisper's stock phantom phrases.

    Also true for a stand-alone sound caption in capitals («ПЕЧАЛЬНАЯ ЗАСТАВКА», «ШУМ ДОЖДЯ»),
    which Whisper learned from subtitles.
    """
    norm = normalize_text(text)
    if not norm:
        return True
    letters = re.sub(r"[^A-Za-zА-Яа-яЁё]", "", text)
    if letters.isupper() and (len(norm.split()) >= 2 or len(letters) >= 8):
        return True
    if _PHANTOM_FULL_RE.match(norm):
        return True
    rest = _PHANTOM_ANY_RE.sub(" ", norm).split()
    return not rest


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


def _find_loop(words: list[str], min_repeats: int = 4, max_n: int = 8) -> tuple[int, int, int] | None:
    """Find an n-gram repeated back to back ``min_repeats`` times: (start, n, repeats)."""
    best = None
    L = len(words)
    for n in range(1, max_n + 1):
        i = 0
        while i + n * min_repeats <= L:
            gram = words[i : i + n]
            reps = 1
            j = i + n
            while j + n <= L and words[j : j + n] == gram:
                reps += 1
                j += n
            if reps >= min_repeats and (best is None or reps * n > best[1] * best[2]):
                best = (i, n, reps)
            i += max(1, (reps - 1) * n) if reps > 1 else 1
    return best


# --------------------------------------------------------------------------------------
# Silero VAD (per process: onnxruntime sessions are not shared across fork)
# --------------------------------------------------------------------------------------
_vad_lock = threading.Lock()
_vad_model = None
_vad_pid = None


def _vad():
    global _vad_model, _vad_pid
    with _vad_lock:
        if _vad_model is None or _vad_pid != os.getpid():
            from faster_whisper.utils import get_assets_path
            from faster_whisper.vad import SileroVADModel

            _vad_model = SileroVADModel(os.path.join(get_assets_path(), "silero_vad_v6.onnx"))
            _vad_pid = os.getpid()
        return _vad_model


def _speech_probs(x: np.ndarray) -> np.ndarray:
    """Silero speech probability per 512-sample frame (ceil(len/512) values)."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.float32)
    # Silero is trained on normalised levels; quiet telephone audio scores low. Apply a bounded
    # gain so the loudest frames reach about -12 dBFS (never amplify noise-only input much:
    # gain limited to +18 dB). The level is estimated on a subsample to spare memory.
    sub = np.abs(x[:: max(1, n // 2_000_000)])
    peak = float(np.percentile(sub, 99.5)) if len(sub) else 0.0
    del sub
    gain = float(np.clip(0.25 / peak, 1.0, 8.0)) if peak > 1e-4 else 1.0
    xp = np.zeros(n + (-n) % FRAME, np.float32)
    np.multiply(x, gain, out=xp[:n])
    model = _vad()
    # Silero keeps its LSTM state across a call; feeding it in pieces of ~4 min bounds the
    # memory of its ONNX session (the model carries no state between our calls, so pieces
    # overlap by 2 s of context that is discarded).
    piece = FRAME * 7500
    ctx = FRAME * 64
    out = []
    for i in range(0, len(xp), piece):
        a = max(0, i - ctx)
        pr = np.asarray(model(xp[a : i + piece]), dtype=np.float32).reshape(-1)
        out.append(pr[(i - a) // FRAME :])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _frame_db(x: np.ndarray, nframes: int) -> np.ndarray:
    """Energy in dBFS of each 512-sample frame (the last one zero-padded)."""
    out = np.empty(nframes, np.float32)
    full = min(nframes, len(x) // FRAME)
    step = 4096  # frames per chunk: bounded temporaries for long buffers
    for i in range(0, full, step):
        j = min(full, i + step)
        fr = x[i * FRAME : j * FRAME].reshape(j - i, FRAME)
        out[i:j] = np.einsum("ij,ij->i", fr, fr, dtype=np.float64) / FRAME
    if full < nframes:
        tail = np.zeros(FRAME * (nframes - full), np.float32)
        rest = x[full * FRAME :]
        tail[: len(rest)] = rest
        fr = tail.reshape(-1, FRAME)
        out[full:] = np.einsum("ij,ij->i", fr, fr, dtype=np.float64) / FRAME
    return (10.0 * np.log10(out.astype(np.float64) + 1e-10)).astype(np.float32)


def _hysteresis(p: np.ndarray, on: float, off: float) -> np.ndarray:
    out = np.zeros(len(p), dtype=bool)
    active = False
    for i, v in enumerate(p):
        if active:
            active = v >= off
        else:
            active = v >= on
        out[i] = active
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is True."""
    if not len(mask):
        return []
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    out = mask.copy()
    runs = _runs(mask)
    for (s0, e0), (s1, _e1) in zip(runs, runs[1:]):
        if s1 - e0 <= max_gap:
            out[e0:s1] = True
    return out


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for s, e in _runs(mask):
        if e - s < min_len:
            out[s:e] = False
    return out


# --------------------------------------------------------------------------------------
# Turns
# --------------------------------------------------------------------------------------
@dataclass
class Turn:
    start: int  # sample index in the buffer (16 kHz)
    end: int
    channel: int | None  # None: mono / mixdown
    speaker: str


def _dot(a: np.ndarray, b: np.ndarray, chunk: int = 1 << 20) -> float:
    """float64-accurate dot product without float64 copies of whole channels."""
    acc = 0.0
    for i in range(0, len(a), chunk):
        acc += float(np.dot(a[i : i + chunk].astype(np.float64), b[i : i + chunk].astype(np.float64)))
    return acc


def _is_dual_mono(chans: Sequence[np.ndarray], threshold: float) -> bool:
    """All channels carry the same signal (possibly at a different gain)."""
    if len(chans) < 2:
        return False
    ref = chans[0]
    e0 = _dot(ref, ref)
    for x in chans[1:]:
        e1 = _dot(x, x)
        if e0 < 1e-6 and e1 < 1e-6:
            continue  # both silent
        if e0 < 1e-6 or e1 < 1e-6:
            return False
        corr = _dot(ref, x) / math.sqrt(e0 * e1)
        if corr < threshold:
            return False
    return True


def _find_turns(
    chans: Sequence[np.ndarray],
    roles: Sequence[str],
    mono: bool,
    opts: PipelineOptions,
) -> tuple[list[Turn], np.ndarray]:
    """Speech turns in a buffer. Returns (turns, per-frame VAD probability of the mixdown)."""
    n = len(chans[0])
    nframes = int(math.ceil(n / FRAME)) if n else 0
    if nframes == 0:
        return [], np.zeros(0, bool)
    mix = chans[0] if len(chans) == 1 else np.mean(np.stack(chans), axis=0)
    probs = _speech_probs(mix)[:nframes]
    speech = _hysteresis(probs, opts.vad_on, opts.vad_off)
    speech = _close_gaps(speech, int(round(0.3 / FRAME_S)))
    speech = _drop_short(speech, max(1, int(round(opts.min_speech_s / FRAME_S))))
    pad = int(round(opts.pad_s * SR))
    merge = int(round(opts.merge_gap_s / FRAME_S))

    if mono:
        mask = _close_gaps(speech, int(round(opts.mono_merge_gap_s / FRAME_S)))
        turns = [
            Turn(max(0, s * FRAME - pad), min(n, e * FRAME + pad), None, "unknown")
            for s, e in _runs(mask)
        ]
        return _merge_overlapping(turns), probs

    db = np.stack([_frame_db(c, nframes) for c in chans])  # (C, F)
    loudest = db.max(axis=0)
    floors = [_noise_floor(d) for d in db]
    turns: list[Turn] = []
    for ci in range(len(chans)):
        floor = floors[ci]
        active = (
            speech
            & (db[ci] >= floor + opts.floor_db)
            & (db[ci] >= opts.abs_floor_db)
            & (db[ci] >= loudest - opts.bleed_db)
        )
        active = _close_gaps(active, int(round(0.25 / FRAME_S)))
        active = _drop_short(active, max(1, int(round(opts.min_speech_s / FRAME_S))))
        # merge same-channel activity across short gaps unless another channel spoke there
        others = np.zeros(nframes, bool)
        for cj in range(len(chans)):
            if cj != ci:
                oj = speech & (db[cj] >= loudest - opts.bleed_db) & (
                    db[cj] >= floors[cj] + opts.floor_db
                )
                others |= oj
        runs = _runs(active)
        merged: list[list[int]] = []
        for s, e in runs:
            if merged and s - merged[-1][1] <= merge and not others[merged[-1][1] : s].any():
                merged[-1][1] = e
            else:
                merged.append([s, e])
        role = roles[ci] if ci < len(roles) else "unknown"
        turns.extend(_merge_overlapping([
            Turn(max(0, s * FRAME - pad), min(n, e * FRAME + pad), ci, role) for s, e in merged
        ]))
    turns.sort(key=lambda t: (t.start, t.channel or 0))
    return turns, probs


def _noise_floor(db: np.ndarray) -> float:
    """A channel's line-noise level (dBFS): the 10th percentile of its frame energies,
    ignoring digital silence (a PBX mutes the line between calls or on hold, which would drag
    a plain percentile down to -100 dB and make hiss look like speech)."""
    live = db[db > -90.0]
    if len(live) < max(10, len(db) // 20):
        return -90.0
    return float(np.percentile(live, 10))


def _merge_overlapping(turns: list[Turn]) -> list[Turn]:
    """Merge overlapping turns of one channel (padding can make neighbours overlap)."""
    out: list[Turn] = []
    for t in sorted(turns, key=lambda t: t.start):
        if out and out[-1].channel == t.channel and t.start <= out[-1].end:
            out[-1].end = max(out[-1].end, t.end)
        else:
            out.append(t)
    return out


def _split_long(turn: Turn, sig: np.ndarray, max_len: int) -> list[Turn]:
    """Split a turn longer than ``max_len`` samples at its quietest 32 ms frames."""
    out = []
    s = turn.start
    while turn.end - s > max_len:
        lo = s + int(max_len * 0.6)
        hi = s + max_len
        seg = sig[lo:hi]
        nfr = len(seg) // FRAME
        if nfr > 0:
            db = _frame_db(seg[: nfr * FRAME], nfr)
            cut = lo + int(np.argmin(db)) * FRAME + FRAME // 2
        else:
            cut = hi
        out.append(Turn(s, cut, turn.channel, turn.speaker))
        s = cut
    out.append(Turn(s, turn.end, turn.channel, turn.speaker))
    return out


# --------------------------------------------------------------------------------------
# Packing turns into Whisper windows
# --------------------------------------------------------------------------------------
@dataclass
class Piece:
    pstart: float  # seconds in the packed window
    pend: float
    ostart: float  # seconds in the recording
    oend: float
    turn: Turn


@dataclass
class PackedWindow:
    audio: np.ndarray
    pieces: list[Piece]
    depth: int = 0  # how many times this window was continued after an early stop


def _pack(
    turns: list[Turn],
    chans: Sequence[np.ndarray],
    mix: np.ndarray,
    offset_s: float,
    opts: PipelineOptions,
) -> list[PackedWindow]:
    max_len = int(opts.max_window_s * SR)
    gap_n = int(opts.gap_s * SR)
    parts: list[tuple[np.ndarray, Turn]] = []
    for turn in turns:
        if turn.channel is None or opts.source == "mix":
            sig = mix
        elif opts.source == "channel":
            sig = chans[turn.channel]
        else:  # "auto": the mixdown, unless another channel talks over this turn
            overlap = sum(
                max(0, min(turn.end, o.end) - max(turn.start, o.start))
                for o in turns
                if o is not turn and o.channel != turn.channel
            )
            sig = chans[turn.channel] if overlap > 0.3 * SR else mix
        for part in _split_long(turn, sig, max_len):
            if part.end > part.start:
                parts.append((sig, part))

    def groups(cap: int) -> list[list[int]]:
        out: list[list[int]] = []
        cur_len = 0
        for k, (_sig, part) in enumerate(parts):
            n = part.end - part.start
            need = n + (gap_n if out and out[-1] and cur_len else 0)
            if not out or cur_len + need > cap:
                out.append([k])
                cur_len = n
            else:
                out[-1].append(k)
                cur_len += need
        return out

    packed = groups(max_len)
    if opts.balance_windows and len(packed) > 1:
        # the smallest cap that needs no more windows than the greedy 28 s packing
        total = sum(p.end - p.start for _s, p in parts) + gap_n * (len(parts) - 1)
        cap = max(int(total / len(packed)), max(p.end - p.start for _s, p in parts))
        step = SR // 2
        while cap < max_len:
            g = groups(cap)
            if len(g) <= len(packed):
                packed = g
                break
            cap += step

    gap = np.zeros(gap_n, np.float32)
    windows: list[PackedWindow] = []
    for grp in packed:
        cur: list[np.ndarray] = []
        pieces: list[Piece] = []
        cur_len = 0
        for k in grp:
            sig, part = parts[k]
            if pieces:
                cur.append(gap)
                cur_len += gap_n
            pstart = cur_len / SR
            cur.append(sig[part.start : part.end])
            cur_len += part.end - part.start
            pieces.append(
                Piece(pstart, cur_len / SR, offset_s + part.start / SR, offset_s + part.end / SR, part)
            )
        windows.append(PackedWindow(np.concatenate(cur).astype(np.float32), pieces))
    return windows


# --------------------------------------------------------------------------------------
# Whisper decoding (batched)
# --------------------------------------------------------------------------------------
@dataclass
class _Decoded:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    text: str


class _Decoder:
    def __init__(self, model, language: str, opts: PipelineOptions):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.opts = opts
        self.tok = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                             language=language)
        self.suppress = list(get_suppressed_tokens(self.tok, [-1]))
        self.prompt = list(self.tok.sot_sequence)
        self.ts_begin = self.tok.timestamp_begin
        self.eot = self.tok.eot

    def features(self, audio: np.ndarray, frames: int = 3000) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        feats = self.model.feature_extractor(audio)[..., :-1]
        return pad_or_trim(feats, frames).astype(np.float32)

    def encoder_frames(self, samples: int) -> int:
        """Mel frames given to the encoder for a window of ``samples`` samples."""
        pad = self.opts.encoder_pad_s
        if pad is None:
            return 3000
        need = max(samples / 160 + pad * 100, self.opts.encoder_min_s * 100)
        return int(min(3000, max(100, math.ceil(need / 100) * 100)))

    def encode(self, feats: np.ndarray):
        import ctranslate2

        return self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)), to_cpu=False
        )

    def generate(
        self, enc, n: int, beam: int, content_s: float = WHISPER_WINDOW_S,
        repetition_penalty: float = 1.0,
    ) -> list[_Decoded]:
        # Bound the output by the audio length: speech rarely exceeds ~8 tokens/s, so a decoder
        # stuck in a repetition loop stops early instead of running to 448 tokens.
        max_new = int(min(440, self.opts.max_tokens_per_s * content_s + 16))
        results = self.model.model.generate(
            enc,
            [self.prompt] * n,
            beam_size=beam,
            patience=1.0,
            length_penalty=1.0,
            max_length=len(self.prompt) + max_new,
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
            out.append(_Decoded(toks, float(avg), float(r.no_speech_prob), self.tok.decode(toks)))
        return out

    def coverage(self, d: _Decoded, content_s: float) -> float:
        """Window seconds covered by the complete segments of a result (content_s if none
        is left open and the last one ends near the end of the audio)."""
        segs, resume = self.split_segments(d.tokens, content_s)
        return content_s if resume is None else resume

    def needs_fallback(self, d: _Decoded, content_s: float = WHISPER_WINDOW_S) -> bool:
        """Should this window be decoded again (repetition loop, low confidence, or a
        first pass cheaper than the fallback that stopped long before the end)?"""
        o = self.opts
        if d.no_speech_prob > o.no_speech_threshold and d.avg_logprob < o.log_prob_threshold:
            return False  # silence: nothing to redo
        text = d.text.strip()
        if text and _compression_ratio(text) > o.compression_ratio_threshold:
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
        import ctranslate2

        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[idx]))
        return self.model.find_alignment(self.tok, token_lists, sub, num_frames)


# --------------------------------------------------------------------------------------
# Transcription of one buffer
# --------------------------------------------------------------------------------------
def _window_support(w: PackedWindow, vad_probs: np.ndarray | None, offset_s: float) -> float:
    """Mean VAD speech probability over the recording spans packed into a window."""
    if vad_probs is None or not len(vad_probs):
        return 0.0
    tot = acc = 0.0
    for p in w.pieces:
        a = int(max(0, (p.ostart - offset_s) / FRAME_S))
        b = int(min(len(vad_probs), math.ceil((p.oend - offset_s) / FRAME_S)))
        if b > a:
            acc += float(np.sum(vad_probs[a:b]))
            tot += b - a
    return acc / tot if tot else 0.0


def _transcribe_windows(
    dec: _Decoder, windows: list[PackedWindow], opts: PipelineOptions,
    on_batch: Callable[[int], None] | None = None,
    vad_probs: np.ndarray | None = None, offset_s: float = 0.0,
) -> list[dict]:
    """Decode packed windows in batches; returns raw (unfiltered) segments.

    Like Whisper's own long-form loop, a window whose last segment is left open (the decoder
    stopped before the end of the audio) is continued: the audio after the last complete
    timestamp becomes a new window in the queue.

    With a model of several CTranslate2 workers (``PipelineOptions.parallel``), that many
    batches are decoded at the same time, each on its own worker (CTranslate2 releases the
    GIL), instead of one batch on all threads.
    """
    segments: list[dict] = []
    queue = list(windows)
    par = max(1, min(opts.parallel, getattr(dec.model.model, "num_workers", 1)))
    pool = None
    if par > 1 and len(queue) > opts.batch_size:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(par, thread_name_prefix="whisper")
    try:
        while queue:
            batches = []
            while queue and len(batches) < par:
                batches.append(queue[: opts.batch_size])
                queue = queue[opts.batch_size :]
            run = lambda b: _decode_batch(dec, b, opts, vad_probs, offset_s)  # noqa: E731
            if pool is not None and len(batches) > 1:
                outs = list(pool.map(run, batches))
            else:
                outs = [run(b) for b in batches]
            for batch, (segs, rests) in zip(batches, outs):
                segments.extend(segs)
                queue[0:0] = rests
                if on_batch:
                    on_batch(len(batch))
    finally:
        if pool is not None:
            pool.shutdown()
    return segments


def _decode_batch(
    dec: _Decoder, batch: list[PackedWindow], opts: PipelineOptions,
    vad_probs: np.ndarray | None, offset_s: float,
) -> tuple[list[dict], list[PackedWindow]]:
    """Encode, decode (with fallback) and align one batch: (segments, windows to resume)."""
    import ctranslate2

    segments: list[dict] = []
    rests: list[PackedWindow] = []
    nfr = dec.encoder_frames(max(len(w.audio) for w in batch))
    feats = np.stack([dec.features(w.audio, nfr) for w in batch])
    enc = dec.encode(feats)
    longest = max(len(w.audio) for w in batch) / SR
    results = dec.generate(enc, len(batch), opts.beam_size, longest)
    enc_np = None
    redo = [i for i, r in enumerate(results)
            if dec.needs_fallback(r, len(batch[i].audio) / SR)]
    if redo and opts.fallback_beam:
        # Deterministic fallback (no temperature sampling, so a call gives the same
        # transcript on every run): beam search with a repetition penalty.
        enc_np = np.array(enc)
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[redo]))
        again = dec.generate(
            sub, len(redo), opts.fallback_beam,
            max(len(batch[i].audio) for i in redo) / SR,
            repetition_penalty=opts.fallback_repetition_penalty,
        )
        for i, r in zip(redo, again):
            cs = len(batch[i].audio) / SR
            cov_new, cov_old = dec.coverage(r, cs), dec.coverage(results[i], cs)
            if cov_new > cov_old + opts.fallback_uncovered_s or (
                cov_new >= cov_old - opts.fallback_uncovered_s and _better(r, results[i], opts)
            ):
                results[i] = r
    if enc_np is None:
        enc_np = np.array(enc)

    todo = []
    for i, (w, r) in enumerate(zip(batch, results)):
        if (
            r.no_speech_prob > opts.no_speech_threshold
            and r.avg_logprob < opts.log_prob_threshold
            and _window_support(w, vad_probs, offset_s) < opts.vad_sure
        ):
            continue  # Whisper's "this window is silence" rule, unless the VAD is sure
        content_s = len(w.audio) / SR
        segs, resume_s = dec.split_segments(r.tokens, content_s)
        if (
            resume_s is not None
            and resume_s >= MIN_RESUME_S  # progress guaranteed: no endless re-decoding
            and content_s - resume_s > 1.0
            and w.depth < MAX_RESUMES
        ):
            rest = _remainder(w, resume_s)
            if rest is not None:
                rests.append(rest)
        if segs:
            todo.append((i, segs))
    if todo:
        idx = [i for i, _ in todo]
        token_lists = [[t for _s, _e, toks in segs for t in toks] for _i, segs in todo]
        frames = [min(nfr, int(math.ceil(len(batch[i].audio) / 160))) for i in idx]
        aligned = dec.align(enc_np, idx, token_lists, frames)
        for (i, segs), words in zip(todo, aligned):
            segments.extend(_words_to_segments(dec, batch[i], segs, words, results[i], opts))
    del enc, enc_np, feats
    return segments, rests


def _remainder(w: PackedWindow, resume_s: float) -> PackedWindow | None:
    """The part of a packed window after ``resume_s`` (seconds), as a new window."""
    cut = int(round(resume_s * SR))
    audio = w.audio[cut:]
    pieces = []
    for p in w.pieces:
        if p.pend <= resume_s + 0.05:
            continue
        shift = max(0.0, resume_s - p.pstart)
        pieces.append(
            Piece(max(0.0, p.pstart - resume_s), p.pend - resume_s, p.ostart + shift, p.oend, p.turn)
        )
    if not pieces or len(audio) < int(0.2 * SR):
        return None
    return PackedWindow(np.ascontiguousarray(audio), pieces, w.depth + 1)


def _better(new: _Decoded, old: _Decoded, opts: PipelineOptions) -> bool:
    def bad(d):
        cr = _compression_ratio(d.text.strip()) if d.text.strip() else 0.0
        return cr > opts.compression_ratio_threshold

    if bad(old) != bad(new):
        return bad(old)
    return new.avg_logprob > old.avg_logprob


def _words_to_segments(
    dec: _Decoder,
    win: PackedWindow,
    segs: list[tuple[float, float, list[int]]],
    words: list[dict],
    res: _Decoded,
    opts: PipelineOptions,
) -> list[dict]:
    """Map aligned words back to the recording; one output segment per (whisper segment, turn)."""
    from faster_whisper.transcribe import merge_punctuations

    if not words:
        return []
    merge_punctuations(words, "\"'“¿([{-«", "\"'.。,，!！?？:：”)]}、»")
    # Which whisper segment does each word belong to (by token count)?
    seg_of_token = []
    for si, (_s, _e, toks) in enumerate(segs):
        seg_of_token.extend([si] * len(toks))
    pieces = win.pieces
    centers = np.array([(p.pstart + p.pend) / 2 for p in pieces])

    def piece_for(t0: float, t1: float) -> int:
        mid = (t0 + t1) / 2
        for k, p in enumerate(pieces):
            if p.pstart - 1e-6 <= mid <= p.pend + 1e-6:
                return k
        # in a gap: nearest piece edge
        dist = [min(abs(mid - p.pstart), abs(mid - p.pend)) for p in pieces]
        return int(np.argmin(dist)) if dist else int(np.argmin(np.abs(centers - mid)))

    def segment_piece(si: int) -> int | None:
        """The piece a whole Whisper segment belongs to, if its timestamps say so clearly."""
        s0, s1, _ = segs[si]
        if s1 <= s0:
            return None
        ov = [max(0.0, min(s1, p.pend) - max(s0, p.pstart)) for p in pieces]
        k = int(np.argmax(ov))
        return k if ov[k] >= 0.8 * (s1 - s0) else None

    seg_piece = [segment_piece(si) for si in range(len(segs))]
    out: list[dict] = []
    tok_pos = 0
    cur = None
    last_k = 0
    for w in words:
        ntok = len(w.get("tokens", []))
        si = seg_of_token[min(tok_pos, len(seg_of_token) - 1)] if seg_of_token else 0
        tok_pos += ntok
        if not w["word"]:
            continue
        k = seg_piece[si] if si < len(seg_piece) and seg_piece[si] is not None else None
        if k is None:
            k = piece_for(float(w["start"]), float(w["end"]))
        k = max(k, last_k)  # words come in packing order: never back to an earlier turn
        last_k = k
        p = pieces[k]
        ws = p.ostart + min(max(float(w["start"]) - p.pstart, 0.0), p.oend - p.ostart)
        we = p.ostart + min(max(float(w["end"]) - p.pstart, 0.0), p.oend - p.ostart)
        we = max(we, ws)
        word = {"start": ws, "end": we, "word": w["word"], "probability": float(w["probability"])}
        if cur is None or cur["_seg"] != si or cur["_piece"] != k:
            cur = {"_seg": si, "_piece": k, "turn": p.turn, "words": []}
            out.append(cur)
        cur["words"].append(word)

    result = []
    for s in out:
        ws = s["words"]
        text = "".join(x["word"] for x in ws).strip()
        if not text:
            continue
        t = s["turn"]
        result.append(
            {
                "start": ws[0]["start"],
                "end": ws[-1]["end"],
                "speaker": t.speaker,
                "channel": t.channel,
                "text": text,
                "words": ws,
                "_avg_logprob": res.avg_logprob,
                "_no_speech_prob": res.no_speech_prob,
            }
        )
    return result


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------
def _vad_support(s: dict, probs: np.ndarray, offset_s: float) -> float:
    if not len(probs):
        return 0.0
    a = int(max(0, (s["start"] - offset_s) / FRAME_S))
    b = int(math.ceil((s["end"] - offset_s) / FRAME_S))
    b = min(len(probs), max(b, a + 1))
    if a >= len(probs):
        return 0.0
    return float(np.mean(probs[a:b]))


def _filter_segments(
    segments: list[dict], opts: PipelineOptions, vad_probs: np.ndarray | None = None,
    offset_s: float = 0.0,
) -> list[dict]:
    out = []
    for s in segments:
        words = s["words"]
        # 1. remove decoder loops: an n-gram repeated back to back >= 4 times is kept once
        norm_words = [normalize_text(w["word"]) for w in words]
        loop = _find_loop(norm_words)
        while loop is not None:
            i, n, reps = loop
            words = words[: i + n] + words[i + n * reps :]
            norm_words = norm_words[: i + n] + norm_words[i + n * reps :]
            loop = _find_loop(norm_words)
        # 2. subtitle credits anywhere, phantom phrases standing alone
        text = "".join(w["word"] for w in words).strip()
        if not text or is_phantom(text):
            continue
        # 3. confidence
        probs = [w["probability"] for w in words if normalize_text(w["word"])]
        if not probs:
            continue
        mean_p = float(np.mean(probs))
        support = _vad_support(s, vad_probs, offset_s) if vad_probs is not None else 0.0
        if support >= opts.vad_sure:
            if mean_p < opts.min_word_prob_sure:
                continue
        elif mean_p < opts.min_word_prob or (
            len(probs) <= 3 and mean_p < opts.min_word_prob_short
        ):
            continue
        if _compression_ratio(text) > opts.compression_ratio_threshold and len(text) > 40:
            # still a loop after collapsing: keep nothing rather than invented text
            continue
        s = dict(s, words=words, text=text, start=words[0]["start"], end=words[-1]["end"])
        out.append(s)
    # 4. stand-alone phantom sentences inside kept segments (e.g. trailing «Продолжение следует.»)
    for s in out:
        parts = re.split(r"(?<=[.!?…])\s+", s["text"])
        if len(parts) > 1:
            kept = [p for p in parts if not is_phantom(p)]
            if len(kept) != len(parts) and kept:
                s["text"] = " ".join(kept)
                keep_norm = set(normalize_text(" ".join(kept)).split())
                s["words"] = [w for w in s["words"] if normalize_text(w["word"]) in keep_norm
                              or not normalize_text(w["word"])]
    return out


def _round_segment(s: dict) -> dict:
    r = lambda x: round(float(x), 3)  # noqa: E731
    return {
        "start": r(s["start"]),
        "end": r(s["end"]),
        "speaker": s["speaker"],
        "channel": s["channel"],
        "text": s["text"],
        "words": [
            {"start": r(w["start"]), "end": r(w["end"]), "word": w["word"].strip(),
             "probability": round(float(w["probability"]), 3)}
            for w in s["words"]
            if w["word"].strip()
        ],
    }


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------
def transcribe(
    path: str | os.PathLike,
    *,
    model_dir: str | os.PathLike,
    language: str = "ru",
    channel_roles: Sequence[str] = ("operator", "citizen"),
    cpu_threads: int = 2,
    progress: Callable[[float], None] | None = None,
    options: PipelineOptions | None = None,
) -> TranscriptResult:
    """Transcribe a call recording.

    Raises :class:`crm.calls.audio.AudioDecodeError` for unreadable input and
    :class:`crm.calls.whisper_model.ModelError` when the model cannot be loaded.
    ``progress(percent)`` is called with values from 0 to 100.
    """
    opts = options or PipelineOptions()
    if not language:
        raise ValueError("language must be given (auto-detection is disabled on purpose)")
    t0 = time.perf_counter()
    info = probe(path)  # fast validation before loading the model
    total_s = max(info.duration_s or 0.0, 1e-6)

    last = [-1.0]

    def report(done_s: float):
        if progress is None:
            return
        pct = round(min(100.0, max(0.0, 100.0 * done_s / total_s)), 1)
        if pct < 100.0:
            pct = min(pct, 99.9)  # 100 only once everything is done
        if pct <= last[0]:
            return  # monotonic, no duplicates
        last[0] = pct
        try:
            progress(pct)
        except Exception:  # a broken progress callback must not kill the job
            pass

    report(0.0)
    workers = max(1, min(opts.parallel, cpu_threads))
    model = load_model(Path(model_dir), cpu_threads, workers=workers)
    dec = _Decoder(model, language, opts)

    segments: list[dict] = []
    dual_mono_votes: list[bool] = []
    speech_s = 0.0
    carry: np.ndarray | None = None
    carry_start = 0.0
    duration_s = 0.0
    channels = info.channels
    final_info = None
    win_n = int(opts.decode_window_s * SR)

    for win in iter_decode(path, window_s=opts.decode_window_s):
        final_info = win.info or final_info
        data = win.samples
        if carry is not None and carry.shape[1]:
            data = np.concatenate([carry, data], axis=1)
            start_s = carry_start
        else:
            start_s = win.start_s
        if data.shape[1] == 0:
            continue
        if win.last:
            cut = data.shape[1]
        else:
            cut = _cut_point(data, max(0, data.shape[1] - int(60 * SR)))
        buf = data[:, :cut]
        carry = data[:, cut:].copy()  # a copy: the view would keep all of `data` alive
        carry_start = start_s + cut / SR
        del data
        if buf.shape[1] == 0:
            continue
        buf_s = buf.shape[1] / SR
        segs, dual, sp = _process_buffer(
            buf, start_s, channel_roles, dec, opts,
            lambda frac, a=start_s, b=buf_s: report(a + 0.99 * frac * b),
        )
        segments.extend(segs)
        speech_s += sp
        if len(buf) > 1:
            dual_mono_votes.append(dual)
        report(start_s + buf.shape[1] / SR)
        del buf
        _trim_memory()
    if final_info is not None:
        duration_s = float(final_info.duration_s or 0.0)
        channels = final_info.channels

    segments.sort(key=lambda s: (s["start"], s["channel"] if s["channel"] is not None else -1))
    segments = [_round_segment(s) for s in segments]
    elapsed = time.perf_counter() - t0
    report(total_s)
    return TranscriptResult(
        status="done" if segments else "no_speech",
        duration_s=round(duration_s, 3),
        language=language,
        rtf=round(elapsed / max(duration_s, 1e-6), 4),
        segments=segments,
        channels=channels,
        sample_rate=info.sample_rate,
        dual_mono=bool(dual_mono_votes) and all(dual_mono_votes),
        processing_s=round(elapsed, 3),
        speech_s=round(speech_s, 3),
    )


def _trim_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it per thread arena otherwise, and
    a worker's RSS would creep up job after job). Best effort, Linux/glibc only."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cut_point(data: np.ndarray, lo: int) -> int:
    """A quiet place in data[:, lo:] to end a decode buffer (the rest is carried over)."""
    seg = np.mean(np.abs(data[:, lo:]), axis=0) if data.shape[0] > 1 else np.abs(data[0, lo:])
    n = len(seg) // FRAME
    if n < 2:
        return data.shape[1]
    db = _frame_db(seg[: n * FRAME], n)
    # prefer the latest run of >= 10 quiet frames (0.3 s), else the quietest frame
    quiet = db <= (np.percentile(db, 20) + 3.0)
    best = None
    for s, e in _runs(quiet):
        if e - s >= 10:
            best = (s + e) // 2
    if best is None:
        best = int(np.argmin(db))
    return lo + best * FRAME


def _process_buffer(
    buf: np.ndarray,
    offset_s: float,
    roles: Sequence[str],
    dec: _Decoder,
    opts: PipelineOptions,
    tick: Callable[[float], None],
) -> tuple[list[dict], bool, float]:
    chans = [np.ascontiguousarray(buf[c]) for c in range(buf.shape[0])]
    dual = _is_dual_mono(chans, opts.dual_mono_corr)
    mono = len(chans) == 1 or dual
    if dual:
        chans = [chans[0]]
    mix = chans[0] if len(chans) == 1 else np.mean(np.stack(chans), axis=0).astype(np.float32)
    turns, vad_probs = _find_turns(chans, roles, mono, opts)
    if not turns:
        return [], dual, 0.0
    windows = _pack(turns, chans, mix, offset_s, opts)
    speech_s = sum(p.pend - p.pstart for w in windows for p in w.pieces)
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        tick(min(1.0, done[0] / max(1, len(windows))))

    segs = _transcribe_windows(dec, windows, opts, on_batch, vad_probs, offset_s)
    segs = _filter_segments(segs, opts, vad_probs, offset_s)
    return segs, dual, speech_s


# --------------------------------------------------------------------------------------
# Command line: python -m crm.calls.transcriber FILE
# --------------------------------------------------------------------------------------
def _default_model_dir() -> Path:
    env = os.environ.get("CRM_WHISPER_MODEL")
    if env:
        return Path(env)
    from crm.calls.whisper_model import ensure_model

    instance = Path(os.environ.get("CRM_INSTANCE_PATH") or "instance")
    return ensure_model(instance / "models")


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m crm.calls.transcriber",
        description="Transcribe a call recording and print the JSON transcript.",
    )
    ap.add_argument("file")
    ap.add_argument("--model-dir", help="CTranslate2 Whisper model directory "
                    "(default: $CRM_WHISPER_MODEL, else the bundled base model in "
                    "$CRM_INSTANCE_PATH/models)")
    ap.add_argument("--language", default="ru")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channel-roles", default="operator,citizen",
                    help="speaker role of each channel, comma separated")
    ap.add_argument("--words", action="store_true", help="include word timestamps")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        model_dir = Path(args.model_dir) if args.model_dir else _default_model_dir()
        res = transcribe(
            args.file,
            model_dir=model_dir,
            language=args.language,
            channel_roles=tuple(r.strip() for r in args.channel_roles.split(",")),
            cpu_threads=args.threads,
        )
    except AudioDecodeError as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), file=sys.stderr)
        return 2
    out = res.to_json()
    if args.words:
        out["segments"] = res.segments
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
