"""The outcome of a transcription and the shape of its segments."""

from __future__ import annotations

from dataclasses import dataclass, field


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


def round_segment(s: dict) -> dict:
    """A segment as :class:`TranscriptResult` holds it: times rounded to ms, empty words dropped."""
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
