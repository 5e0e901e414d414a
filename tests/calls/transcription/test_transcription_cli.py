"""`crm transcribe` (crm.cli), the one command line of the transcription pipeline, run with Flask's CLI
runner."""

from __future__ import annotations

import json

import pytest

from tests.speech import BAD


def test_cli_undecodable_input_exits_2_with_the_error(app, tmp_path):
    """`crm transcribe`: undecodable input is refused before the model is loaded; JSON error on stderr."""
    from crm.cli import main

    runner = app.test_cli_runner()
    bad = runner.invoke(main, ["transcribe", str(BAD / "t13_zero_bytes.wav"), "--json", "--model-dir", str(tmp_path)])
    assert bad.exit_code == 2, bad.output
    assert bad.stdout == ""
    assert json.loads(bad.stderr)["error"] == {"code": "empty", "message": "the recording is empty (0 bytes)",
                                               "message_ru": "Файл записи пустой (0 байт)."}
    text = runner.invoke(main, ["transcribe", str(BAD / "t13_random_bytes.wav"), "--model-dir", str(tmp_path)])
    assert text.exit_code == 2 and "not_audio" in text.stderr


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
    assert json.loads(bad.stderr)["error"]["code"] == "empty"


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
