"""Speech turns: who speaks when, with bleed suppression between the channels of a call.

In each 32 ms frame a channel counts as speaking when the VAD says speech, its energy is well
above its own noise floor, and it is not more than ``bleed_db`` quieter than the loudest channel.
Cross-talk/echo of the other side is 20-30 dB down and is thus ignored, while true overlap (both
talking) keeps both channels. Activity is smoothed and merged across short gaps into turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from crm.calls.transcription.frames import close_gaps, drop_short, frame_db, hysteresis, true_runs
from crm.calls.transcription.options import FRAME, FRAME_S, SR, PipelineOptions
from crm.calls.transcription.vad import speech_probs


@dataclass
class Turn:
    """A span of speech in a buffer: samples ``start``-``end`` at 16 kHz, its channel and speaker role."""

    start: int  # sample index in the buffer (16 kHz)
    end: int
    channel: int | None  # None: mono / mixdown
    speaker: str


def find_turns(
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
    probs = speech_probs(mix)[:nframes]
    speech = hysteresis(probs, opts.vad_on, opts.vad_off)
    speech = close_gaps(speech, int(round(0.3 / FRAME_S)))
    speech = drop_short(speech, max(1, int(round(opts.min_speech_s / FRAME_S))))
    pad = int(round(opts.pad_s * SR))
    merge = int(round(opts.merge_gap_s / FRAME_S))

    if mono:
        mask = close_gaps(speech, int(round(opts.mono_merge_gap_s / FRAME_S)))
        turns = [
            Turn(max(0, s * FRAME - pad), min(n, e * FRAME + pad), None, "unknown")
            for s, e in true_runs(mask)
        ]
        return _merge_overlapping(turns), probs

    db = np.stack([frame_db(c, nframes) for c in chans])  # (C, F)
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
        active = close_gaps(active, int(round(0.25 / FRAME_S)))
        active = drop_short(active, max(1, int(round(opts.min_speech_s / FRAME_S))))
        # merge same-channel activity across short gaps unless another channel spoke there
        others = np.zeros(nframes, bool)
        for cj in range(len(chans)):
            if cj != ci:
                oj = speech & (db[cj] >= loudest - opts.bleed_db) & (
                    db[cj] >= floors[cj] + opts.floor_db
                )
                others |= oj
        runs = true_runs(active)
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


def split_long(turn: Turn, sig: np.ndarray, max_len: int) -> list[Turn]:
    """Split a turn longer than ``max_len`` samples at its quietest 32 ms frames."""
    out = []
    s = turn.start
    while turn.end - s > max_len:
        lo = s + int(max_len * 0.6)
        hi = s + max_len
        seg = sig[lo:hi]
        nfr = len(seg) // FRAME
        if nfr > 0:
            db = frame_db(seg[: nfr * FRAME], nfr)
            cut = lo + int(np.argmin(db)) * FRAME + FRAME // 2
        else:
            cut = hi
        out.append(Turn(s, cut, turn.channel, turn.speaker))
        s = cut
    out.append(Turn(s, turn.end, turn.channel, turn.speaker))
    return out
