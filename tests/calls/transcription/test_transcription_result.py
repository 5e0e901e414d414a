"""What a transcription hands over (crm.calls.transcription.result)."""

from __future__ import annotations

import json

from crm.calls.transcription import TranscriptResult
from tests.speech import fake_segment


def test_transcript_result_json_shape():
    res = TranscriptResult(status="done", duration_s=1.0, language="ru", rtf=0.1,
                           segments=[fake_segment("привет")])
    js = res.to_json()
    assert set(js) == {"status", "duration_s", "language", "rtf", "segments"}
    assert set(js["segments"][0]) == {"start", "end", "speaker", "channel", "text"}
    json.dumps(js)
