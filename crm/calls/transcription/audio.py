"""Decoding call recordings from whatever a PBX hands over.

* The container is sniffed from the **content** (magic bytes), never from the file name:
  WAV (PCM 8/16/24/32-bit and float, G.711 mu-law / A-law, GSM 06.10 "wav49", IMA/MS ADPCM,
  G.722 ...), RF64, AIFF, MP3 (with or without ID3), OGG (Opus / Vorbis / FLAC), FLAC, AMR,
  AU, CAF, Matroska/WebM, MP4/M4A and headerless Asterisk ``.gsm``.
* Decoding uses PyAV (FFmpeg libraries bundled in the wheel; no ``ffmpeg`` binary needed) and
  resamples every channel to 16 kHz float32 separately (the transcriber needs the channels).
* For WAV the RIFF header is parsed and the decoded length is checked against it: a file cut
  mid-write (``data`` chunk shorter than declared) is reported as ``truncated``.
* Failures raise :class:`AudioDecodeError` with a stable ``code`` for the job status, an English
  ``message`` and a Russian ``message_ru`` for the UI.

Long recordings can be decoded window by window with :func:`iter_decode` so that memory stays
bounded (about ``channels x window_s x 16000 x 4`` bytes per window).

Every entry point takes a path or a readable, seekable binary file object (``Source``): the worker
decodes a stored recording straight from its decrypting reader
(:func:`crm.security.crypto.open_recording`), so no plaintext copy is ever written to disk. A file
object is read from its start and left open.
"""

from __future__ import annotations

import gc
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator, Union

import av
import numpy as np
from babel.numbers import format_decimal

__all__ = [
    "TARGET_RATE",
    "AudioDecodeError",
    "AudioInfo",
    "DecodedAudio",
    "AudioWindow",
    "sniff_format",
    "probe",
    "decode",
    "iter_decode",
]

#: A recording to decode: a path, or a readable and seekable binary file object (read from its start).
Source = Union[str, os.PathLike, BinaryIO]

TARGET_RATE = 16000
MIN_RATE = 4000
MAX_RATE = 384000
MAX_CHANNELS = 64


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
def N_(message: str) -> str:
    """Marks a Russian message for extraction (as :func:`crm.i18n.N_`, which this package, standing
    alone, does not import); it is translated where it is shown (``crm.calls.services``)."""
    return message


#: The one wording of an empty recording: ``crm transcribe`` (this module's ``empty``) and the upload's
#: refusal (:func:`crm.calls.services.stage_upload`, web form and ``POST /api/v1/calls``) say the same.
EMPTY_RU = N_("Файл записи пуст (0 байт): нужен файл с записью звонка.")

_MESSAGES_RU = {
    "empty": EMPTY_RU,
    "not_audio": N_("Файл не является аудиозаписью или его формат не распознан."),
    "damaged": N_("Запись повреждена: не удаётся прочитать звук."),
    "unsupported_codec": N_("Кодек этой записи не поддерживается."),
    "truncated": N_("Запись обрезана: файл короче, чем указано в его заголовке "
                    "(запись могла быть прервана или ещё не дописана)."),
    "too_long": N_("Запись слишком длинная."),
}


class AudioDecodeError(Exception):
    """A recording could not be decoded.

    Attributes:
      code: stable machine code: ``empty``, ``not_audio``, ``damaged``, ``unsupported_codec``,
        ``truncated``.
      message: English description (also ``str(exc)``).
      message_ru: Russian text for the UI: ``message_id`` (a Russian msgid marked ``N_``, with
        ``%(name)s`` placeholders) filled with ``values`` as :meth:`shown_values` writes them
        (seconds with one decimal and the Russian decimal comma: «7,4 с»); an edge that shows it
        to a person translates ``message_id`` and fills in ``shown_values(number)`` itself.
      values: the placeholders' raw values (seconds as floats).
      retryable: True only for ``truncated`` (the file may still be being written); every
        other code is permanent and must not be retried.
    """

    def __init__(self, code: str, message: str, *, message_ru: str | None = None, values: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_id = message_ru or _MESSAGES_RU.get(code, N_("Не удалось прочитать запись."))
        self.values = values or {}
        self.retryable = code == "truncated"

    def shown_values(self, number: Callable[[float], str] | None = None) -> dict:
        """``values`` as a person reads them: each float (seconds) written by ``number``; by default
        with one decimal and the Russian decimal comma («7,4»), the pattern of
        ``crm.i18n.format_number(v, 1, locale="ru")`` (this package may not import the app's i18n:
        the transcription-standalone contract), so an edge in a request passes
        ``lambda v: format_number(v, 1)`` for the request's language. Other values as they are."""
        if number is None:
            def number(v: float) -> str:
                return format_decimal(v, format="#,##0.0", locale="ru")
        return {k: number(v) if isinstance(v, float) else v for k, v in self.values.items()}

    @property
    def message_ru(self) -> str:
        return self.message_id % self.shown_values() if self.values else self.message_id

    def __repr__(self) -> str:
        return f"AudioDecodeError({self.code!r}, {self.message!r})"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "message_ru": self.message_ru}


# --------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------
@dataclass
class AudioInfo:
    """What :func:`probe` learns cheaply about a recording."""

    container: str  # sniffed container: wav, mp3, ogg, flac, ...
    codec: str  # FFmpeg decoder name: pcm_mulaw, gsm_ms, opus, ...
    sample_rate: int
    channels: int
    duration_s: float | None  # from the header / container (None if unknown)
    size_bytes: int
    # WAV only: number of sample frames the header promises (None when unknown)
    header_frames: int | None = None


@dataclass
class DecodedAudio:
    """A whole recording decoded: one float32 array per channel at :data:`TARGET_RATE`."""

    channels: list[np.ndarray]
    sample_rate: int  # original sample rate
    num_channels: int  # original channel count
    duration_s: float  # from the decoded samples at the original rate
    info: AudioInfo

    @property
    def rate(self) -> int:
        return TARGET_RATE

    def mixdown(self) -> np.ndarray:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)


@dataclass
class AudioWindow:
    """A slice of a recording produced by :func:`iter_decode`."""

    start_s: float  # offset of the first sample in the recording
    samples: np.ndarray  # shape (channels, n) float32 at 16 kHz
    last: bool = False
    info: AudioInfo | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------
_MP3_BITRATES = {
    # (version_bits, layer_bits) -> kbps table by index
    (3, 1): [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],  # MPEG1 L3
    (3, 2): [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],  # MPEG1 L2
    (3, 3): [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],  # L1
}
_MP3_LSF = {
    1: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],  # L3 (MPEG2/2.5)
    2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],  # L2
    3: [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],  # L1
}
_MP3_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


def _mp3_frame_len(h: bytes) -> int | None:
    """Length in bytes of the MPEG audio frame whose 4-byte header is ``h`` (None: invalid)."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return None
    version = (h[1] >> 3) & 3  # 3: MPEG1, 2: MPEG2, 0: MPEG2.5, 1: reserved
    layer = (h[1] >> 1) & 3  # 1: L3, 2: L2, 3: L1, 0: reserved
    br_idx = (h[2] >> 4) & 15
    sr_idx = (h[2] >> 2) & 3
    pad = (h[2] >> 1) & 1
    if version == 1 or layer == 0 or br_idx in (0, 15) or sr_idx == 3:
        return None
    kbps = (_MP3_BITRATES[(3, layer)] if version == 3 else _MP3_LSF[layer])[br_idx]
    rate = _MP3_RATES[version][sr_idx]
    if layer == 3:  # Layer I
        return (12 * kbps * 1000 // rate + pad) * 4
    if layer == 1 and version != 3:  # Layer III, MPEG2/2.5
        return 72 * kbps * 1000 // rate + pad
    return 144 * kbps * 1000 // rate + pad


def _looks_like_mpeg_audio(buf: bytes, start: int = 0) -> bool:
    """Two (or three) consecutive valid MPEG audio frame headers starting at ``start``."""
    pos = start
    for _ in range(3):
        n = _mp3_frame_len(buf[pos : pos + 4])
        if not n:
            return False
        pos += n
        if pos + 4 > len(buf):
            return pos <= len(buf) + 4 and pos > start  # ran out of sniff buffer: accept
    return True


def _looks_like_adts(buf: bytes) -> bool:
    if len(buf) < 9 or buf[0] != 0xFF or (buf[1] & 0xF6) != 0xF0:
        return False
    n = ((buf[3] & 3) << 11) | (buf[4] << 3) | (buf[5] >> 5)
    if n < 7:
        return False
    if n + 2 > len(buf):
        return True
    return buf[n] == 0xFF and (buf[n + 1] & 0xF6) == 0xF0


def _id3_size(buf: bytes) -> int:
    if len(buf) >= 10 and buf[:3] == b"ID3":
        s = buf[6:10]
        if all(b < 0x80 for b in s):
            size = (s[0] << 21) | (s[1] << 14) | (s[2] << 7) | s[3]
            footer = 10 if buf[5] & 0x10 else 0
            return 10 + size + footer
    return 0


def sniff_format(head: bytes, size: int | None = None) -> str | None:
    """Name of the FFmpeg demuxer for these leading bytes, or None when it is not audio.

    ``head`` should be the first 64 KiB of the file (more is not needed).
    """
    if len(head) < 4:
        return None
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:16] == bytes.fromhex("726966662e91cf11a5d628db04c10000"):
        return "w64"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b".snd":
        return "au"
    if head[:4] == b"caff":
        return "caf"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp":
        return "mov"
    if head[:4] == b"MThd":
        return None  # MIDI: no waveform
    id3 = _id3_size(head)
    if id3:
        rest = head[id3:]
        if not rest and size is not None and size > id3:
            return "mp3"  # very large ID3 tag: trust it, decoding will verify
        if rest[:4] == b"fLaC":
            return "flac"
        if _looks_like_adts(rest):
            return "aac"
        # Allow some junk/padding between the tag and the first frame.
        for off in range(0, min(len(rest) - 4, 4096)):
            if rest[off] == 0xFF and _looks_like_mpeg_audio(rest, off):
                return "mp3"
        return None
    if _looks_like_adts(head):
        return "aac"
    if _looks_like_mpeg_audio(head):
        return "mp3"
    # Headerless Asterisk GSM (".gsm"): 33-byte frames, each starting with the 0xD nibble.
    if size is not None and size >= 33 * 4 and size % 33 == 0:
        frames = [head[i] for i in range(0, min(len(head), 33 * 200), 33)]
        if frames and all((b >> 4) == 0xD for b in frames):
            return "gsm"
    return None


# --------------------------------------------------------------------------------------
# WAV header
# --------------------------------------------------------------------------------------
@dataclass
class _WavHeader:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int
    data_offset: int | None
    data_size: int | None  # None: unknown / streaming placeholder
    fact_frames: int | None

    def expected_frames(self) -> int | None:
        if self.fact_frames is not None and self.format_tag not in (1, 3, 0xFFFE):
            return self.fact_frames
        if self.data_size is not None and self.block_align > 0:
            if self.format_tag in (1, 3, 6, 7, 0xFFFE):  # PCM / float / A-law / mu-law
                return self.data_size // self.block_align
            if self.fact_frames is not None:
                return self.fact_frames
        return self.fact_frames


_WAV_EXT_PCM = {1, 3, 6, 7}


def _parse_wav(f: BinaryIO, size: int) -> _WavHeader:
    """Parse the RIFF/RF64 chunks of a WAV file open for reading. Raises ``damaged`` on a broken header."""
    f.seek(0)
    head = f.read(12)
    big = head[:4] == b"RIFX"
    rf64 = head[:4] in (b"RF64", b"BW64")
    e = ">" if big else "<"
    fmt = None
    data_offset = data_size = fact_frames = None
    ds64_data = ds64_frames = None
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        ch = f.read(8)
        if len(ch) < 8:
            break
        cid = ch[:4]
        (csize,) = struct.unpack(e + "I", ch[4:8])
        body_pos = pos + 8
        if cid == b"fmt ":
            body = f.read(min(csize, 64))
            if len(body) < 16:
                raise AudioDecodeError(
                    "damaged",
                    "WAV header is damaged: the fmt chunk is incomplete",
                    message_ru=N_("Запись повреждена: заголовок WAV неполный."),
                )
            tag, chans, rate, _bps, balign, bits = struct.unpack(e + "HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:
                (sub,) = struct.unpack(e + "H", body[24:26])
                tag_eff = sub if sub in _WAV_EXT_PCM else tag
            else:
                tag_eff = tag
            fmt = (tag_eff, chans, rate, balign, bits)
        elif cid == b"ds64" and rf64:
            body = f.read(min(csize, 28))
            if len(body) >= 24:
                _riff, ds64_data, ds64_frames = struct.unpack("<QQQ", body[:24])
        elif cid == b"fact":
            body = f.read(4)
            if len(body) == 4:
                (fact_frames,) = struct.unpack(e + "I", body)
        elif cid == b"data":
            data_offset = body_pos
            data_size = csize
            if rf64 and csize == 0xFFFFFFFF and ds64_data is not None:
                data_size = ds64_data
            break
        if csize == 0xFFFFFFFF:
            break
        pos = body_pos + csize + (csize & 1)
    if fmt is None:
        raise AudioDecodeError(
            "damaged",
            "WAV header is damaged: no fmt chunk",
            message_ru=N_("Запись повреждена: в заголовке WAV нет описания формата."),
        )
    tag, chans, rate, balign, bits = fmt
    if data_offset is None:
        raise AudioDecodeError(
            "damaged",
            "damaged recording: WAV header only, no audio data",
            message_ru=N_("Запись повреждена: в файле только заголовок WAV, звука нет."),
        )
    if data_size in (0, 0xFFFFFFFF):
        data_size = None  # placeholder written by a recorder that did not finalise the file
    if rf64 and ds64_frames:
        fact_frames = ds64_frames
    return _WavHeader(tag, chans, rate, balign, bits, data_offset, data_size, fact_frames)


def _check_wav_bytes(hdr: _WavHeader, size: int) -> None:
    """Compare the bytes present after the data chunk start with what the header declares."""
    assert hdr.data_offset is not None
    available = max(0, size - hdr.data_offset)
    if available == 0:
        raise AudioDecodeError(
            "damaged",
            "damaged recording: WAV header only, no audio data",
            message_ru=N_("Запись повреждена: в файле только заголовок WAV, звука нет."),
        )
    if hdr.data_size is not None and available < hdr.data_size:
        missing = hdr.data_size - available
        if missing >= max(hdr.block_align, 1):
            bps = hdr.data_size / max(hdr.expected_frames() or 1, 1) * hdr.sample_rate
            have_s = available / bps if bps else 0.0
            want_s = hdr.data_size / bps if bps else 0.0
            raise AudioDecodeError(
                "truncated",
                f"truncated recording: the WAV header declares {hdr.data_size} bytes of audio "
                f"({want_s:.2f} s) but only {available} bytes ({have_s:.2f} s) are present",
                message_ru=N_("Запись обрезана: по заголовку %(expected)s с звука, в файле только "
                              "%(present)s с (запись прервана или ещё не дописана)."),
                values={"expected": want_s, "present": have_s},
            )


# --------------------------------------------------------------------------------------
# Probe
# --------------------------------------------------------------------------------------
@contextmanager
def _reading(source: Source) -> Iterator[BinaryIO]:
    """``source`` as a binary file positioned at its start: a file object as it is (left open), a
    path opened for the block and closed after. Raises :class:`AudioDecodeError` ``not_audio`` when
    the path cannot be opened."""
    if hasattr(source, "read"):
        source.seek(0)
        yield source  # type: ignore[misc]
        return
    try:
        f = open(source, "rb")
    except OSError as exc:
        raise AudioDecodeError(
            "not_audio", f"cannot read the recording: {exc.strerror or exc}",
            message_ru=N_("Не удаётся прочитать файл записи."),
        ) from exc
    with f:
        yield f


def _sniff(f: BinaryIO) -> tuple[str, int, bytes]:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        raise AudioDecodeError("empty", "the recording is empty (0 bytes)")
    f.seek(0)
    head = f.read(min(size, 65536))
    fmt = sniff_format(head, size)
    if fmt is None:
        raise AudioDecodeError(
            "not_audio",
            "the file is not a recognised audio recording (unknown content signature)",
        )
    return fmt, size, head


def _open(f: BinaryIO, fmt: str):
    f.seek(0)
    try:
        return av.open(f, mode="r", format=fmt, metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise AudioDecodeError(
            "damaged" if fmt in ("wav", "w64", "aiff") else "not_audio",
            f"cannot read the {fmt} container: {exc}",
        ) from exc
    except av.error.FFmpegError as exc:
        raise AudioDecodeError("damaged", f"cannot open the {fmt} container: {exc}") from exc


def _audio_stream(container, fmt: str):
    streams = list(container.streams.audio)
    if not streams:
        raise AudioDecodeError("not_audio", f"the {fmt} file contains no audio stream")
    stream = streams[0]
    ctx = stream.codec_context
    if ctx is None or not getattr(ctx, "name", None) or ctx.name == "none":
        raise AudioDecodeError(
            "unsupported_codec",
            f"unsupported codec in the {fmt} file (no decoder available)",
        )
    stream.thread_type = "SLICE"
    return stream


def _validated(f: BinaryIO) -> tuple[str, int, _WavHeader | None]:
    """``(format, size in bytes, parsed WAV header or None)`` after sniffing the content and, for a
    WAV, checking its header against the file size. Raises :class:`AudioDecodeError`."""
    fmt, size, _head = _sniff(f)
    hdr = None
    if fmt == "wav":
        hdr = _parse_wav(f, size)
        _check_wav_bytes(hdr, size)
    return fmt, size, hdr


def _stream_params(stream) -> tuple[object, int, int]:
    """``(codec context, sample rate in Hz, channels)`` of an audio stream; raises
    :class:`AudioDecodeError` ``unsupported_codec`` outside MIN_RATE..MAX_RATE or 1..MAX_CHANNELS."""
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or stream.rate or 0)
    chans = int(ctx.channels or 0)
    if not (MIN_RATE <= rate <= MAX_RATE) or not (1 <= chans <= MAX_CHANNELS):
        raise AudioDecodeError(
            "unsupported_codec",
            f"unsupported audio parameters: {rate} Hz, {chans} channels",
            message_ru=N_("Неподдерживаемые параметры звука (%(rate)s Гц, каналов: %(channels)s)."),
            values={"rate": rate, "channels": chans},
        )
    return ctx, rate, chans


def probe(path: Source) -> AudioInfo:
    """Validate a recording (a path or a seekable file object) quickly (for uploads) and describe it.

    Sniffs the content, parses a WAV header (rejecting header-only and truncated files) and
    decodes up to ~2 s of audio to prove the codec works. Raises :class:`AudioDecodeError`.
    """
    with _reading(path) as f:
        return _probe(f)


def _probe(f: BinaryIO) -> AudioInfo:
    fmt, size, hdr = _validated(f)
    with _open(f, fmt) as container:
        stream = _audio_stream(container, fmt)
        ctx, rate, chans = _stream_params(stream)
        decoded = 0
        errors = 0
        packets = 0
        try:
            for packet in container.demux(stream):
                packets += 1
                try:
                    for frame in packet.decode():
                        decoded += frame.samples
                except av.error.InvalidDataError:
                    errors += 1
                if decoded >= 2 * rate or packets >= 400:
                    break
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise AudioDecodeError("damaged", f"cannot decode the recording: {exc}") from exc
        if decoded == 0:
            if errors:
                raise AudioDecodeError(
                    "not_audio" if fmt in ("mp3", "aac") else "damaged",
                    f"no decodable audio in the {fmt} file ({errors} invalid packets)",
                )
            raise AudioDecodeError(
                "damaged", "damaged recording: no audio samples could be decoded",
            )
        duration = _container_duration(container, stream)
        header_frames = hdr.expected_frames() if hdr else None
        if header_frames is not None:
            duration = header_frames / rate
        return AudioInfo(
            container=fmt,
            codec=ctx.name,
            sample_rate=rate,
            channels=chans,
            duration_s=duration,
            size_bytes=size,
            header_frames=header_frames,
        )


def _container_duration(container, stream) -> float | None:
    try:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return None


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------
def iter_decode(
    path: Source,
    *,
    window_s: float = 600.0,
    info_out: list | None = None,
) -> Iterator[AudioWindow]:
    """Decode a recording (a path or a seekable file object) window by window (bounded memory).

    Yields :class:`AudioWindow` objects of ``window_s`` seconds (the last may be shorter),
    each a ``(channels, n)`` float32 array at 16 kHz. After the last window the decoded
    length is checked against the WAV header (``truncated``). When ``info_out`` is a list the
    final :class:`AudioInfo` (with the decoded duration) is appended to it.
    """
    with _reading(path) as f:
        yield from _iter_decode(f, window_s=window_s, info_out=info_out)


def _iter_decode(f: BinaryIO, *, window_s: float, info_out: list | None) -> Iterator[AudioWindow]:
    fmt, size, hdr = _validated(f)
    window_n = max(int(window_s * TARGET_RATE), TARGET_RATE)

    with _open(f, fmt) as container:
        stream = _audio_stream(container, fmt)
        ctx, rate, chans = _stream_params(stream)
        expected = hdr.expected_frames() if hdr else None
        info = AudioInfo(
            container=fmt,
            codec=ctx.name,
            sample_rate=rate,
            channels=chans,
            duration_s=(expected / rate) if expected else _container_duration(container, stream),
            size_bytes=size,
            header_frames=expected,
        )
        # Output samples allowed at 16 kHz (trim codec padding, e.g. GSM's 320-sample blocks).
        max_out = int(round(expected * TARGET_RATE / rate)) if expected else None

        resampler = av.AudioResampler(format="fltp", rate=TARGET_RATE)
        pending: list[np.ndarray] = []
        pending_n = 0
        emitted = 0
        in_frames = 0
        errors = 0
        packets = 0

        def frames():
            nonlocal in_frames, errors, packets
            try:
                for packet in container.demux(stream):
                    packets += 1
                    try:
                        for frame in packet.decode():
                            if frame.samples:
                                in_frames += frame.samples
                                frame.pts = None
                                yield frame
                    except av.error.InvalidDataError:
                        errors += 1
            except av.error.FFmpegError as exc:
                if in_frames == 0:
                    raise AudioDecodeError(
                        "damaged", f"cannot decode the recording: {exc}"
                    ) from exc
                errors += 1  # damaged tail: keep what was decoded, length check follows
            yield None  # flush the resampler

        def take(n: int) -> np.ndarray:
            nonlocal pending, pending_n
            buf = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
            out, rest = buf[:, :n], buf[:, n:].copy()  # small; frees the big buffer
            pending = [rest] if rest.shape[1] else []
            pending_n = rest.shape[1]
            return np.ascontiguousarray(out, dtype=np.float32)

        for frame in frames():
            for out in resampler.resample(frame):
                arr = out.to_ndarray()
                if arr.ndim == 1:
                    arr = arr.reshape(chans, -1)
                pending.append(arr.astype(np.float32, copy=False))
                pending_n += arr.shape[1]
            while pending_n >= window_n + TARGET_RATE:  # keep >=1 s so "last" is exact
                chunk = take(window_n)
                if max_out is not None:
                    chunk = chunk[:, : max(0, max_out - emitted)]
                if chunk.shape[1]:
                    yield AudioWindow(emitted / TARGET_RATE, chunk, False, info)
                    emitted += chunk.shape[1]
        del resampler
        gc.collect()  # PyAV resampler objects are only freed by the GC (faster-whisper#390)

        if in_frames == 0:
            raise AudioDecodeError(
                "damaged" if errors or fmt != "mp3" else "not_audio",
                "damaged recording: no audio samples could be decoded",
            )
        if packets and errors > max(3, packets // 2):
            raise AudioDecodeError(
                "damaged",
                f"damaged recording: {errors} of {packets} packets could not be decoded",
            )
        _check_decoded_length(info, hdr, in_frames, rate)

        tail = take(pending_n) if pending_n else np.zeros((chans, 0), np.float32)
        if max_out is not None:
            tail = tail[:, : max(0, max_out - emitted)]
        frames_kept = min(in_frames, expected) if expected else in_frames
        info.duration_s = frames_kept / rate
        if info_out is not None:
            info_out.append(info)
        yield AudioWindow(emitted / TARGET_RATE, tail, True, info)


def _check_decoded_length(info: AudioInfo, hdr: _WavHeader | None, got: int, rate: int) -> None:
    """Compare decoded sample frames with what the header/container promised."""
    if hdr is not None:
        expected = hdr.expected_frames()
        if expected:
            # Block codecs (GSM: 320, ADPCM: block) may round; allow 1 block or 20 ms.
            tol = max(int(0.02 * rate), 320, hdr.block_align * 2)
            if got + tol < expected:
                raise AudioDecodeError(
                    "truncated",
                    f"truncated recording: the WAV header promises {expected / rate:.2f} s, "
                    f"only {got / rate:.2f} s could be decoded",
                    message_ru=N_("Запись обрезана: по заголовку %(expected)s с звука, "
                                  "прочитано только %(decoded)s с."),
                    values={"expected": expected / rate, "decoded": got / rate},
                )
        return
    # Other containers: durations are estimates (e.g. CBR MP3 from size); only flag gross loss.
    want = info.duration_s
    if want and want > 2.0 and got / rate < 0.5 * want:
        raise AudioDecodeError(
            "truncated",
            f"truncated recording: the container announces {want:.2f} s, "
            f"only {got / rate:.2f} s could be decoded",
            message_ru=N_("Запись обрезана: ожидалось %(expected)s с звука, прочитано только %(decoded)s с."),
            values={"expected": want, "decoded": got / rate},
        )


def decode(path: Source) -> DecodedAudio:
    """Decode a whole recording into per-channel float32 arrays at 16 kHz.

    Memory: ``channels x duration x 64 KB/s`` (an hour of stereo is ~460 MB); for long calls
    prefer :func:`iter_decode`.
    """
    parts: list[np.ndarray] = []
    info: AudioInfo | None = None
    for win in iter_decode(path, window_s=600.0):
        parts.append(win.samples)
        info = win.info
    assert info is not None
    data = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    channels = [np.ascontiguousarray(data[c]) for c in range(data.shape[0])]
    return DecodedAudio(
        channels=channels,
        sample_rate=info.sample_rate,
        num_channels=info.channels,
        duration_s=float(info.duration_s or 0.0),
        info=info,
    )
