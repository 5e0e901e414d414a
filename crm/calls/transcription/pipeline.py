"""The transcription pipeline: a recording in, a :class:`TranscriptResult` out.

The recording is decoded window by window (``decode_window_s``, default 5 minutes, so memory
stays bounded); each buffer goes through the stages of this package in turn: channels
(:mod:`.channels`), speech turns (:mod:`.vad`, :mod:`.turns`), packing (:mod:`.packing`),
batched decoding and alignment (:mod:`.batches`, :mod:`.decoder`, :mod:`.alignment`) and the
filters against invented text (:mod:`.filters`).
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np

from crm.calls.transcription.audio import iter_decode, probe
from crm.calls.transcription.batches import transcribe_windows
from crm.calls.transcription.channels import NARROWBAND_DB, high_band_db, is_dual_mono
from crm.calls.transcription.decoder import Decoder
from crm.calls.transcription.filters import filter_segments
from crm.calls.transcription.frames import frame_db, true_runs
from crm.calls.transcription.model import load_model
from crm.calls.transcription.options import FRAME, SR, PipelineOptions
from crm.calls.transcription.packing import pack
from crm.calls.transcription.result import TranscriptResult, round_segment
from crm.calls.transcription.turns import find_turns


def transcribe(
    path: str | os.PathLike | BinaryIO,
    *,
    model_dir: str | os.PathLike,
    language: str = "ru",
    channel_roles: Sequence[str] = ("operator", "citizen"),
    cpu_threads: int = 2,
    progress: Callable[[float], None] | None = None,
    options: PipelineOptions | None = None,
    prompt: str | None = None,
) -> TranscriptResult:
    """Transcribe a call recording: a path, or a readable and seekable binary file object (the
    worker passes :func:`crm.security.crypto.open_recording`'s reader, so the plaintext stays in
    memory).

    Raises :class:`~crm.calls.transcription.audio.AudioDecodeError` for unreadable input (before the
    model is loaded) and :class:`~crm.calls.transcription.model.ModelError` when the model cannot be loaded.
    ``progress(percent)`` is called with values from 0 to 100. ``prompt`` is the vocabulary prompt
    (:func:`crm.calls.vocabulary.prompt_for`): text the decoder is conditioned on in every window,
    never part of the output.
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
    dec = Decoder(model, language, opts, prompt=prompt)

    segments: list[dict] = []
    dual_mono_votes: list[bool] = []
    speech_s = 0.0
    carry: np.ndarray | None = None
    carry_start = 0.0
    duration_s = 0.0
    channels = info.channels
    final_info = None

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
    segments = [round_segment(s) for s in segments]
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
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cut_point(data: np.ndarray, lo: int) -> int:
    """A quiet place in data[:, lo:] to end a decode buffer (the rest is carried over)."""
    seg = np.mean(np.abs(data[:, lo:]), axis=0) if data.shape[0] > 1 else np.abs(data[0, lo:])
    n = len(seg) // FRAME
    if n < 2:
        return data.shape[1]
    db = frame_db(seg[: n * FRAME], n)
    # prefer the latest run of >= 10 quiet frames (0.3 s), else the quietest frame
    quiet = db <= (np.percentile(db, 20) + 3.0)
    best = None
    for s, e in true_runs(quiet):
        if e - s >= 10:
            best = (s + e) // 2
    if best is None:
        best = int(np.argmin(db))
    return lo + best * FRAME


def buffer_channels(
    buf: np.ndarray, opts: PipelineOptions
) -> tuple[list[np.ndarray], bool, bool, PipelineOptions]:
    """A decode buffer's channels and the options it is decoded with: ``(channels, dual_mono,
    mono, options)``. A dual-mono buffer keeps one channel. The options are chosen from the
    buffer's content after that (:meth:`PipelineOptions.for_buffer`: a short mono telephone-band
    clip gets the short-clip settings), so a dual-mono recording and its mono twin are decoded alike and a
    long recording's buffers each decide for themselves."""
    chans = [np.ascontiguousarray(buf[c]) for c in range(buf.shape[0])]
    dual = is_dual_mono(chans, opts.dual_mono_corr)
    mono = len(chans) == 1 or dual
    if dual:
        chans = [chans[0]]
    seconds = len(chans[0]) / SR
    narrow = mono and seconds <= opts.short_clip_s and high_band_db(chans[0]) < NARROWBAND_DB
    return chans, dual, mono, opts.for_buffer(mono, seconds, narrow)


def _process_buffer(
    buf: np.ndarray,
    offset_s: float,
    roles: Sequence[str],
    dec: Decoder,
    opts: PipelineOptions,
    tick: Callable[[float], None],
) -> tuple[list[dict], bool, float]:
    chans, dual, mono, opts = buffer_channels(buf, opts)
    mix = chans[0] if len(chans) == 1 else np.mean(np.stack(chans), axis=0).astype(np.float32)
    turns, vad_probs = find_turns(chans, roles, mono, opts)
    if not turns:
        return [], dual, 0.0
    windows = pack(turns, chans, mix, offset_s, opts)
    speech_s = sum(p.pend - p.pstart for w in windows for p in w.pieces)
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        tick(min(1.0, done[0] / max(1, len(windows))))

    segs = transcribe_windows(dec, windows, opts, on_batch, vad_probs, offset_s)
    segs = filter_segments(segs, opts, vad_probs, offset_s)
    return segs, dual, speech_s
