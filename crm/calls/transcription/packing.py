"""Packing turns into Whisper windows.

Each turn is cut from the mixdown (or from its own channel where the other side talks over it);
turns are packed in time order into <= ``max_window_s`` windows separated by ``gap_s`` of silence,
spread evenly over the fewest windows. A :class:`Piece` maps a span of the packed window back to
the recording's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from crm.calls.transcription.options import SR, PipelineOptions
from crm.calls.transcription.turns import Turn, split_long


@dataclass
class Piece:
    """A turn's audio inside a packed window: ``pstart``-``pend`` there, ``ostart``-``oend`` in the
    recording (seconds)."""

    pstart: float  # seconds in the packed window
    pend: float
    ostart: float  # seconds in the recording
    oend: float
    turn: Turn


@dataclass
class PackedWindow:
    """Audio for one Whisper decoding (float32, 16 kHz) and the turns packed into it."""

    audio: np.ndarray
    pieces: list[Piece]
    depth: int = 0  # how many times this window was continued after an early stop


def pack(
    turns: list[Turn],
    chans: Sequence[np.ndarray],
    mix: np.ndarray,
    offset_s: float,
    opts: PipelineOptions,
) -> list[PackedWindow]:
    """Pack ``turns`` (sample positions in a buffer starting ``offset_s`` s into the recording) into
    Whisper windows of at most ``opts.max_window_s`` s, in time order, ``opts.gap_s`` s apart."""
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
        for part in split_long(turn, sig, max_len):
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


def remainder(w: PackedWindow, resume_s: float) -> PackedWindow | None:
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
