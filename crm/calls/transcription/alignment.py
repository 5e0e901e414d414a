"""Words back on the recording's timeline: aligned words of a packed window -> segments per turn."""

from __future__ import annotations

import numpy as np

from crm.calls.transcription.decoder import Decoded, Decoder
from crm.calls.transcription.options import PipelineOptions
from crm.calls.transcription.packing import PackedWindow


def words_to_segments(
    dec: Decoder,
    win: PackedWindow,
    segs: list[tuple[float, float, list[int]]],
    words: list[dict],
    res: Decoded,
    opts: PipelineOptions,
) -> list[dict]:
    """Map aligned words back to the recording; one output segment per (whisper segment, turn)."""
    # deferred: importing faster_whisper starts onnxruntime threads (see decoder.Decoder)
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
