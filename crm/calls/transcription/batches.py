"""Decoding packed windows in batches: encode, decode with fallback, continue early stops, align.

Two batches can be decoded at the same time, each on its own CTranslate2 worker of the model.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import ctranslate2
import numpy as np

from crm.calls.transcription.alignment import words_to_segments
from crm.calls.transcription.decoder import Decoder, better, looping
from crm.calls.transcription.options import FRAME_S, MAX_RESUMES, MIN_RESUME_S, SR, PipelineOptions
from crm.calls.transcription.packing import PackedWindow, remainder


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


def transcribe_windows(
    dec: Decoder, windows: list[PackedWindow], opts: PipelineOptions,
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
    dec: Decoder, batch: list[PackedWindow], opts: PipelineOptions,
    vad_probs: np.ndarray | None, offset_s: float,
) -> tuple[list[dict], list[PackedWindow]]:
    """Encode, decode (with fallback) and align one batch: (segments, windows to resume)."""
    segments: list[dict] = []
    rests: list[PackedWindow] = []
    nfr = dec.encoder_frames(max(len(w.audio) for w in batch), opts)
    feats = np.stack([dec.features(w.audio, nfr) for w in batch])
    enc = dec.encode(feats)
    longest = max(len(w.audio) for w in batch) / SR
    # a short mono clip is decoded without the vocabulary prompt first (PipelineOptions.prompt_first)
    prompted = opts.prompt_first
    results = dec.generate(enc, len(batch), opts.beam_size, longest, use_prompt=prompted)
    enc_np = None
    redo = [i for i, r in enumerate(results)
            if dec.needs_fallback(r, len(batch[i].audio) / SR, opts)]
    if redo and opts.fallback_beam:
        # Deterministic fallback (no temperature sampling, so a call gives the same
        # transcript on every run): beam search with a repetition penalty.
        enc_np = np.array(enc)
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[redo]))
        again = dec.generate(
            sub, len(redo), opts.fallback_beam,
            max(len(batch[i].audio) for i in redo) / SR,
            repetition_penalty=opts.fallback_repetition_penalty, use_prompt=prompted,
        )
        for i, r in zip(redo, again):
            cs = len(batch[i].audio) / SR
            cov_new, cov_old = dec.coverage(r, cs), dec.coverage(results[i], cs)
            if cov_new > cov_old + opts.fallback_uncovered_s or (
                cov_new >= cov_old - opts.fallback_uncovered_s and better(r, results[i], opts)
            ):
                results[i] = r
    heard = ([i for i, r in enumerate(results) if dec.mentions_vocabulary(r)]
             if dec.has_prompt and not prompted else [])
    if heard:
        # the clip has one of the hotline's words: decoded again with the prompt, which spells them
        # as the hotline does; kept unless it copies the prompt or loops
        enc_np = np.array(enc) if enc_np is None else enc_np
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[heard]))
        again = dec.generate(sub, len(heard), opts.beam_size,
                             max(len(batch[i].audio) for i in heard) / SR)
        for i, r in zip(heard, again):
            if not dec.copies_prompt(r) and not looping(r, opts):
                results[i] = r
    copied = [i for i, r in enumerate(results) if prompted and dec.copies_prompt(r)]
    if copied:
        # the vocabulary prompt was copied into the output: that window is decoded without it
        enc_np = np.array(enc) if enc_np is None else enc_np
        sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[copied]))
        again = dec.generate(sub, len(copied), opts.fallback_beam or opts.beam_size,
                             max(len(batch[i].audio) for i in copied) / SR, use_prompt=False)
        for i, r in zip(copied, again):
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
            rest = remainder(w, resume_s)
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
            segments.extend(words_to_segments(dec, batch[i], segs, words, results[i], opts))
    del enc, enc_np, feats
    return segments, rests
