"""`crm transcribe` (crm.cli), the one command line of the transcription pipeline, run with Flask's CLI
runner."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.speech import BAD

ROOT = Path(__file__).resolve().parents[3]


def test_cli_undecodable_input_exits_2_with_the_error(app, tmp_path):
    """`crm transcribe`: undecodable input is refused before the model is loaded; JSON error on stderr."""
    from crm.cli import main

    runner = app.test_cli_runner()
    bad = runner.invoke(main, ["transcribe", str(BAD / "t13_zero_bytes.wav"), "--json", "--model-dir", str(tmp_path)])
    assert bad.exit_code == 2, bad.output
    assert bad.stdout == ""
    assert json.loads(bad.stderr)["error"] == {"code": "empty_recording", "message": "the recording is empty (0 bytes)",
                                               "message_ru": "Файл записи пуст (0 байт): нужен файл с записью звонка."}
    text = runner.invoke(main, ["transcribe", str(BAD / "t13_random_bytes.wav"), "--model-dir", str(tmp_path)])
    assert text.exit_code == 2 and text.stderr.startswith("Ошибка (recording_not_audio): ")


def test_cli_error_codes_are_the_apis(ctx, client, tmp_path, make_user, api_token):
    """`crm transcribe` names a refused recording by the code ``POST /api/v1/calls`` answers for the
    same file (``recording_not_audio``, not the decoder's ``not_audio``), as JSON and as text."""
    from crm.cli import main

    headers = api_token(make_user("operator"))
    runner = ctx.test_cli_runner()
    for name in ("t13_zero_bytes.wav", "t13_random_bytes.wav", "t11_header_only.wav", "t11_truncated.wav"):
        data = (BAD / name).read_bytes()
        resp = client.post("/api/v1/calls", data={"file": (io.BytesIO(data), name)}, headers=headers,
                           content_type="multipart/form-data")
        assert resp.status_code == 400, (name, resp.get_json())
        api_code = resp.get_json()["error"]["code"]
        out = runner.invoke(main, ["transcribe", str(BAD / name), "--json", "--model-dir", str(tmp_path)])
        assert out.exit_code == 2 and json.loads(out.stderr)["error"]["code"] == api_code, (name, out.stderr)
        text = runner.invoke(main, ["transcribe", str(BAD / name), "--model-dir", str(tmp_path)])
        assert text.exit_code == 2 and text.stdout == "", (name, text.stderr)
        assert text.stderr == f"Ошибка ({api_code}): {json.loads(out.stderr)['error']['message_ru']}\n", (name, text.stderr)
    assert api_code == "recording_truncated"


def test_cli_plain_refusal_is_the_russian_message_with_the_apis_code(app, tmp_path):
    """Issue 18: in plain mode a refused recording is one Russian line on stderr (the hotline's admins
    read Russian), not the decoder's English «Error: damaged: damaged recording: WAV header only…»;
    the exit status stays 2 and stdout empty."""
    from crm.cli import main

    out = app.test_cli_runner().invoke(main, ["transcribe", str(BAD / "t11_header_only.wav"), "--model-dir", str(tmp_path)])
    assert out.exit_code == 2 and out.stdout == ""
    assert out.stderr == "Ошибка (recording_damaged): Запись повреждена: в файле только заголовок WAV, звука нет.\n"


def test_cli_without_a_model_prints_one_line_naming_how_to_get_it(app, tmp_path):
    """Issue 18: no Whisper model (an empty --model-dir here; CRM_WHISPER_MODEL below) is one line on
    stderr naming `make install` and CRM_WHISPER_MODEL, exit status 1, no ModelError traceback; with
    --json the error object, code ``model_unavailable``."""
    from crm.cli import main

    empty = tmp_path / "no-model"
    empty.mkdir()
    runner = app.test_cli_runner()
    out = runner.invoke(main, ["transcribe", str(BAD / "t06_ulaw8k.wav"), "--model-dir", str(empty)])
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), repr(out.exception)  # not ModelError
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Ошибка (model_unavailable): Модель Whisper недоступна"), out.stderr
    assert "make install" in lines[0] and "CRM_WHISPER_MODEL" in lines[0] and str(empty) in lines[0]
    js = runner.invoke(main, ["transcribe", str(BAD / "t06_ulaw8k.wav"), "--json", "--model-dir", str(empty)])
    assert js.exit_code == 1 and js.stdout == ""
    error = json.loads(js.stderr)["error"]
    assert error["code"] == "model_unavailable" and "model.bin missing" in error["message"]
    assert "make install" in error["message_ru"]


def _crm(instance: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``crm ARGS`` in a new process, as a user runs it: the instance ``instance``, no DATABASE_URL or
    REDIS_URL (the instance's own SQLite file and embedded Redis would be used), stderr as printed."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CRM_WHISPER_MODEL")}
    clean.update(CRM_INSTANCE_PATH=str(instance), PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", "from crm.cli import main; main()", *args], env=clean,
                          capture_output=True, text=True, timeout=300)


def test_cli_in_a_fresh_instance_makes_no_database_and_prints_only_the_error(tmp_path):
    """`crm transcribe` where no instance was set up: no empty SQLite file is left in the instance
    folder (nor created by `crm --help`), and stderr holds the refusal alone, no warning about
    CRM_CONTROLLER_NAME (no consent is recorded here) nor about the database."""
    instance = tmp_path / "fresh"
    instance.mkdir()
    for args in (["transcribe", str(BAD / "t13_random_bytes.wav"), "--json", "--model-dir", str(tmp_path)],
                 ["transcribe", str(BAD / "t13_random_bytes.wav"), "--operator", "Анна", "--model-dir", str(tmp_path)]):
        out = _crm(instance, *args)
        assert out.returncode == 2, out.stderr
        assert out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and "recording_not_audio" in out.stderr, out.stderr
        assert "CRM_CONTROLLER_NAME" not in out.stderr and "WARNING" not in out.stderr
        assert list(instance.iterdir()) == []
    assert _crm(instance, "--help").returncode == 0
    assert list(instance.iterdir()) == []


def test_cli_without_a_model_in_a_new_process_prints_no_traceback(tmp_path):
    """`crm transcribe` as a user runs it, CRM_WHISPER_MODEL naming a directory without a model: exit
    status 1 and one line on stderr, not the ModelError traceback."""
    instance, empty = tmp_path / "fresh", tmp_path / "no-model"
    instance.mkdir()
    empty.mkdir()
    out = _crm(instance, "transcribe", str(BAD / "t06_ulaw8k.wav"), CRM_WHISPER_MODEL=str(empty))
    assert out.returncode == 1 and out.stdout == ""
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("Ошибка (model_unavailable): ") and "CRM_WHISPER_MODEL" in out.stderr


@pytest.mark.model
def test_cli_no_speech_says_so_on_stderr_and_keeps_stdout_empty(app, model_dir):
    """Issue 18: a recording without speech printed nothing at all (exit 0), so a user could not tell
    it from a hang-up of the tool: plain mode says «Речи в записи нет.» on stderr, stdout stays empty
    for scripts, exit 0; --json still says ``status: no_speech`` on stdout."""
    from crm.cli import main

    runner = app.test_cli_runner()
    out = runner.invoke(main, ["transcribe", str(BAD / "t01_silence30_ulaw.wav"), "--model-dir", str(model_dir)])
    assert out.exit_code == 0, out.output
    assert out.stdout == "" and out.stderr == "Речи в записи нет.\n"
    js = runner.invoke(main, ["transcribe", str(BAD / "t01_silence30_ulaw.wav"), "--json", "--model-dir", str(model_dir)])
    assert js.exit_code == 0 and js.stderr == ""
    assert json.loads(js.stdout)["status"] == "no_speech" and json.loads(js.stdout)["segments"] == []


@pytest.mark.model
def test_cli_prints_json(app, model_dir):
    from crm.cli import main

    runner = app.test_cli_runner()
    out = runner.invoke(main, ["transcribe", str(BAD / "t06_ulaw8k.wav"), "--json", "--model-dir", str(model_dir)])
    assert out.exit_code == 0, out.output
    js = json.loads(out.stdout)
    assert set(js) == {"status", "duration_s", "language", "rtf", "segments"}
    assert js["language"] == "ru" and js["segments"]

    bad = runner.invoke(main, ["transcribe", str(BAD / "t13_zero_bytes.wav"), "--json", "--model-dir", str(model_dir)])
    assert bad.exit_code == 2
    assert json.loads(bad.stderr)["error"]["code"] == "empty_recording"


@pytest.mark.model
def test_cli_options_roles_language_threads_words(app, model_dir):
    """The options of the former ``python -m crm.calls.transcriber``: roles per channel, language, threads
    and word timestamps (``--words`` prints JSON)."""
    from crm.cli import main

    out = app.test_cli_runner().invoke(main, [
        "transcribe", str(BAD / "t07_stereo_ulaw_op_left.wav"), "--words", "--model-dir", str(model_dir),
        "--channel-roles", "citizen, operator", "--language", "ru", "--threads", "2"])
    assert out.exit_code == 0, out.output
    js = json.loads(out.stdout)
    assert js["language"] == "ru" and js["segments"]
    assert {s["speaker"] for s in js["segments"]} <= {"citizen", "operator"}
    assert all(s["speaker"] == ("citizen" if s["channel"] == 0 else "operator") for s in js["segments"])
    assert all(s["words"] and {"start", "end", "word", "p"} == set(s["words"][0]) for s in js["segments"])


@pytest.mark.model
def test_cli_without_a_database_names_the_operator_given(app_config, model_dir, tmp_path):
    """`crm transcribe --operator Анна` on a machine without the instance's database: the prompt has
    the line's name, the terms and the name given, so the greeting comes out as the page shows it
    (without the name Whisper wrote «операто, рано»)."""
    from crm import create_app
    from crm.cli import main
    from tests.speech import CALLS, norm

    bare = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    out = bare.test_cli_runner().invoke(main, [
        "transcribe", str(CALLS / "dev_call_01_hot_water.stereo8k.wav"), "--json", "--operator", "Анна",
        "--model-dir", str(model_dir)])
    assert out.exit_code == 0, out.output
    greeting = norm(json.loads(out.stdout)["segments"][0]["text"])
    assert "жилищно коммунального хозяйства" in greeting and "оператор анна" in greeting
    with bare.app_context():
        from crm.db import db
        db.engine.dispose()


@pytest.mark.model
def test_cli_transcribes_in_a_fresh_instance_without_a_database_or_a_warning(tmp_path, model_dir):
    """A whole transcription where no instance was set up: the JSON on stdout, nothing on stderr, and
    the instance folder as it was (the vocabulary prompt reads no database when there is none)."""
    instance = tmp_path / "fresh"
    instance.mkdir()
    out = _crm(instance, "transcribe", str(BAD / "t06_ulaw8k.wav"), "--json", "--model-dir", str(model_dir))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["segments"] and out.stderr == ""
    assert list(instance.iterdir()) == []
