"""Decoding of call recordings (crm.calls.transcription.audio): formats, sniffing, damage detection.

No Whisper model needed. Data: tests/data/audio (copies of ../shared/data/bad-audio and
speech-ru/codecs, see the README there).
"""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from crm.calls.transcription.audio import (
    TARGET_RATE,
    AudioDecodeError,
    decode,
    iter_decode,
    probe,
    sniff_format,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "audio"
BAD = DATA / "bad-audio"
CODECS = DATA / "speech-ru" / "codecs"
CALLS = DATA / "speech-ru" / "calls"


def write_wav(path: Path, data: np.ndarray, rate: int = 8000) -> Path:
    """16-bit PCM WAV; data float in [-1, 1], shape (n,) or (n, channels)."""
    data = np.atleast_2d(data.T).T if data.ndim == 1 else data
    pcm = np.clip(data * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * math.pi * freq * t)).astype(np.float32)


# --------------------------------------------------------------------------------------
# bad-audio cases (README "expected" column, decoding level)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, codec, rate, channels, seconds",
    [
        ("t01_silence30_ulaw.wav", "pcm_mulaw", 8000, 1, 30.0),
        ("t02_silence_then_speech.wav", "pcm_s32le", 8000, 1, 33.693),
        ("t04_pad_30s.wav", "pcm_s32le", 8000, 1, 30.0),
        ("t04_pad_31_5s.wav", "pcm_s32le", 8000, 1, 31.5),
        ("t05_ivr_prompt8k.wav", "pcm_s16le", 8000, 1, 3.252),
        ("t06_ulaw8k.wav", "pcm_mulaw", 8000, 1, 3.744),
        ("t06_alaw8k.wav", "pcm_alaw", 8000, 1, 3.744),
        ("t07_stereo_ulaw_op_left.wav", "pcm_mulaw", 8000, 2, 7.437),
        ("t08_stereo_overlap_bleed.wav", "pcm_s16le", 8000, 2, 7.437),
        ("t09_dual_mono.wav", "pcm_s16le", 8000, 2, 3.744),
        ("t10_gsm610.wav", "gsm_ms", 8000, 1, 3.744),
        ("t11_half_second.wav", "pcm_s16le", 8000, 1, 0.5),
        ("t13_mp3_named.wav", "mp3float", 8000, 1, 8.502),
    ],
)
def test_bad_audio_decodes_with_duration_kept(name, codec, rate, channels, seconds):
    info = probe(BAD / name)
    assert (info.codec, info.sample_rate, info.channels) == (codec, rate, channels)
    audio = decode(BAD / name)
    assert audio.sample_rate == rate and audio.num_channels == channels
    assert len(audio.channels) == channels
    for ch in audio.channels:
        assert ch.dtype == np.float32 and ch.ndim == 1
        # resampled to 16 kHz, length consistent with the duration
        assert abs(len(ch) / TARGET_RATE - audio.duration_s) < 0.01
    # duration within ±50 ms of the truth (README t06: "duration kept within ±50 ms")
    assert abs(audio.duration_s - seconds) <= 0.05


def test_g711_mu_and_a_law_decode_to_the_same_signal():
    mu = decode(BAD / "t06_ulaw8k.wav").channels[0]
    a = decode(BAD / "t06_alaw8k.wav").channels[0]
    assert len(mu) == len(a)
    corr = float(np.corrcoef(mu, a)[0, 1])
    assert corr > 0.99


def test_mp3_named_wav_is_sniffed_from_content():
    """t13: a valid MP3 with a .wav name is decoded as MP3."""
    with open(BAD / "t13_mp3_named.wav", "rb") as f:
        assert sniff_format(f.read(65536)) == "mp3"
    assert probe(BAD / "t13_mp3_named.wav").container == "mp3"


def test_zero_bytes_rejected_at_probe():
    """t13: empty file -> 'empty', a clear message in both languages."""
    with pytest.raises(AudioDecodeError) as ei:
        probe(BAD / "t13_zero_bytes.wav")
    assert ei.value.code == "empty"
    assert "empty" in ei.value.message
    assert "пуст" in ei.value.message_ru
    assert not ei.value.retryable


def test_random_bytes_rejected_at_probe():
    """t13: 4 KiB of random bytes named .wav -> 'not_audio'."""
    with pytest.raises(AudioDecodeError) as ei:
        probe(BAD / "t13_random_bytes.wav")
    assert ei.value.code == "not_audio"
    assert ei.value.message_ru
    with pytest.raises(AudioDecodeError):
        decode(BAD / "t13_random_bytes.wav")


def test_header_only_wav_is_damaged():
    """t11: 44-byte WAV header, no data -> 'damaged' (permanent, not retried)."""
    for fn in (probe, decode):
        with pytest.raises(AudioDecodeError) as ei:
            fn(BAD / "t11_header_only.wav")
        assert ei.value.code == "damaged"
        assert "damaged" in str(ei.value)
        assert "поврежден" in ei.value.message_ru
        assert not ei.value.retryable


def test_truncated_wav_detected_against_header():
    """t11: header says 7.4 s, only ~1.2 s present -> 'truncated' (may still be growing)."""
    for fn in (probe, decode):
        with pytest.raises(AudioDecodeError) as ei:
            fn(BAD / "t11_truncated.wav")
        assert ei.value.code == "truncated"
        assert "7.44" in ei.value.message and "1.25" in ei.value.message
        assert "обрезан" in ei.value.message_ru
        assert ei.value.retryable


def test_truncation_detected_after_decoding(tmp_path):
    """A WAV whose header promises more sample frames (fact chunk) than the codec delivers."""
    src = (BAD / "t10_gsm610.wav").read_bytes()
    # GSM WAV: fact chunk holds the sample count; claim 10x more samples than there are
    i = src.index(b"fact")
    (n,) = struct.unpack("<I", src[i + 8 : i + 12])
    bad = src[: i + 8] + struct.pack("<I", n * 10) + src[i + 12 :]
    p = tmp_path / "gsm_lying_header.wav"
    p.write_bytes(bad)
    with pytest.raises(AudioDecodeError) as ei:
        decode(p)
    assert ei.value.code == "truncated"


def test_streaming_placeholder_header_is_accepted(tmp_path):
    """Recorders that never finalise the header (data size 0 / 0xFFFFFFFF) are read to EOF."""
    p = write_wav(tmp_path / "ok.wav", tone(2.0, 8000))
    raw = bytearray(p.read_bytes())
    i = raw.index(b"data")
    raw[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFFF)
    p.write_bytes(bytes(raw))
    audio = decode(p)
    assert abs(audio.duration_s - 2.0) < 0.01


def test_gsm_decodes_or_fails_cleanly():
    """t10: GSM 06.10 in WAV decodes (PyAV ships the gsm_ms decoder)."""
    audio = decode(BAD / "t10_gsm610.wav")
    assert np.abs(audio.channels[0]).max() > 0.01


def test_dual_mono_channels_identical():
    audio = decode(BAD / "t09_dual_mono.wav")
    assert np.allclose(audio.channels[0], audio.channels[1])


# --------------------------------------------------------------------------------------
# Codecs (speech-ru/codecs)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, container, codec, rate",
    [
        ("ru_0002__pstn_ulaw8k.wav", "wav", "pcm_mulaw", 8000),
        ("ru_0002__pstn_alaw8k.wav", "wav", "pcm_alaw", 8000),
        ("ru_0002__gsm_ms8k.wav", "wav", "gsm_ms", 8000),
        ("ru_0002__mp3_8k_16kbps.mp3", "mp3", "mp3float", 8000),
        ("ru_0002__opus_16k_12kbps.ogg", "ogg", "opus", 48000),
    ],
)
def test_codecs(name, container, codec, rate):
    info = probe(CODECS / name)
    assert (info.container, info.codec, info.sample_rate, info.channels) == (
        container, codec, rate, 1)
    audio = decode(CODECS / name)
    assert abs(audio.duration_s - 8.5) <= 0.05
    assert np.abs(audio.channels[0]).max() > 0.05


def test_codecs_agree_with_each_other():
    ref = decode(CODECS / "ru_0002__pstn_ulaw8k.wav").channels[0]
    for name in ("ru_0002__pstn_alaw8k.wav", "ru_0002__gsm_ms8k.wav"):
        x = decode(CODECS / name).channels[0]
        n = min(len(x), len(ref))
        assert float(np.corrcoef(ref[:n], x[:n])[0, 1]) > 0.9, name


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000])
def test_sample_rates_resampled_to_16k(tmp_path, rate):
    p = write_wav(tmp_path / f"tone{rate}.wav", tone(1.5, rate, 440.0), rate)
    audio = decode(p)
    x = audio.channels[0]
    assert audio.sample_rate == rate
    assert abs(len(x) - 1.5 * TARGET_RATE) <= 2
    # the 440 Hz tone survives resampling
    spec = np.abs(np.fft.rfft(x[2000:-2000]))
    peak_hz = np.argmax(spec) * TARGET_RATE / len(x[2000:-2000])
    assert abs(peak_hz - 440) < 5


def test_any_channel_count(tmp_path):
    n = 8000
    chans = np.stack([tone(1.0, 8000, f) for f in (300, 500, 700, 900)], axis=1)
    assert chans.shape == (n, 4)
    audio = decode(write_wav(tmp_path / "quad.wav", chans))
    assert audio.num_channels == 4 and len(audio.channels) == 4
    for x, f in zip(audio.channels, (300, 500, 700, 900)):
        spec = np.abs(np.fft.rfft(x))
        assert abs(np.argmax(spec) * TARGET_RATE / len(x) - f) < 5


def test_stereo_channels_kept_apart():
    audio = decode(CALLS / "dev_call_01_hot_water.stereo8k.wav")
    assert audio.num_channels == 2
    a, b = audio.channels
    assert float(np.corrcoef(a, b)[0, 1]) < 0.5
    assert abs(audio.duration_s - 55.525) <= 0.05


def test_flac_and_other_sniffing():
    assert sniff_format(b"fLaC\x00\x00\x00\x22") == "flac"
    assert sniff_format(b"OggS\x00\x02" + b"\x00" * 20) == "ogg"
    assert sniff_format(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_format(b"#!AMR\n") == "amr"
    assert sniff_format(b"%PDF-1.7\n") is None
    assert sniff_format(b"<html><body>") is None
    assert sniff_format(b"") is None


def test_flac_roundtrip(tmp_path):
    """Encode a FLAC file with PyAV and decode it back (no ffmpeg binary involved)."""
    import av

    p = tmp_path / "x.flac"
    x = tone(1.0, 16000)
    with av.open(str(p), "w", format="flac") as out:
        st = out.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray((x * 32767).astype(np.int16)[None, :], format="s16",
                                           layout="mono")
        frame.sample_rate = 16000
        for pkt in st.encode(frame):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    info = probe(p)
    assert info.container == "flac"
    audio = decode(p)
    assert abs(audio.duration_s - 1.0) < 0.01
    assert float(np.corrcoef(audio.channels[0][:15000], x[:15000])[0, 1]) > 0.99


def test_iter_decode_windows_are_bounded_and_complete():
    p = CALLS / "dev_call_01_hot_water.stereo8k.wav"
    wins = list(iter_decode(p, window_s=10.0))
    assert wins[-1].last and not any(w.last for w in wins[:-1])
    for w in wins[:-1]:
        assert w.samples.shape == (2, 10 * TARGET_RATE)
    total = sum(w.samples.shape[1] for w in wins)
    whole = decode(p)
    assert total == len(whole.channels[0])
    # windows are contiguous
    for a, b in zip(wins, wins[1:]):
        assert abs(b.start_s - (a.start_s + a.samples.shape[1] / TARGET_RATE)) < 1e-6
    joined = np.concatenate([w.samples for w in wins], axis=1)
    assert np.array_equal(joined[0], whole.channels[0])


def test_not_audio_text_file(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("Это не звук, а текст.\n" * 100, encoding="utf-8")
    with pytest.raises(AudioDecodeError) as ei:
        probe(p)
    assert ei.value.code == "not_audio"


def test_riff_without_fmt_is_damaged(tmp_path):
    p = tmp_path / "nofmt.wav"
    body = b"WAVE" + b"data" + struct.pack("<I", 8) + b"\x00" * 8
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(AudioDecodeError) as ei:
        probe(p)
    assert ei.value.code == "damaged"


def test_unsupported_codec_is_reported(tmp_path):
    """A WAV with an unknown format tag: 'unsupported_codec', not a crash."""
    p = write_wav(tmp_path / "x.wav", tone(1.0, 8000))
    raw = bytearray(p.read_bytes())
    i = raw.index(b"fmt ")
    raw[i + 8 : i + 10] = struct.pack("<H", 0x7A7A)  # no such codec
    p.write_bytes(bytes(raw))
    with pytest.raises(AudioDecodeError) as ei:
        decode(p)
    assert ei.value.code in ("unsupported_codec", "damaged")
    assert ei.value.message and ei.value.message_ru


def test_error_to_dict():
    err = AudioDecodeError("empty", "the recording is empty (0 bytes)")
    d = err.to_dict()
    assert d["code"] == "empty" and d["message"] and d["message_ru"]
    assert isinstance(io.StringIO(str(err)).read(), str)
