"""The hotline's vocabulary prompt (crm.calls.vocabulary; issue 18, point 1).

The prompt names the line, the answering operator, the field's terms and the register's busiest
streets, and never a citizen. Its effect on recognition is measured in bench/transcription.py
(``--methods ours,vocab,plain``); the model tests here check the greeting comes out spelled as the
hotline spells it and that silence and hold music stay silent with the prompt on.
"""
from __future__ import annotations

import pytest

from crm.buildings.services import import_csv, street_names
from crm.calls import vocabulary
from crm.db import db
from crm.jobs import redis_connection
from tests.factories import CitizenFactory, UserFactory


@pytest.fixture()
def no_cache(ctx):
    key = ctx.config["CRM_QUEUE_PREFIX"] + "vocabulary:streets"
    redis_connection(ctx).delete(key)
    yield key
    redis_connection(ctx).delete(key)


def test_compose_parts_in_order():
    text = vocabulary.compose("Горячая линия ЖКХ", ["Анна"], ("ГВС", "стояк"), ("улица Садовая",))
    assert text == "Горячая линия ЖКХ, оператор Анна. Звонят про ГВС, стояк. Адреса: улица Садовая."
    assert vocabulary.compose("", [], (), ()) == ""
    assert vocabulary.compose("Линия", ["", " "], ("ХВС",)) == "Линия. Звонят про ХВС."


def test_street_names_from_the_register_busiest_first(ctx):
    import_csv("address\n"
               "\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, улица Ленина, дом 7\"\n"
               "\"Москва, проспект Мира, 12 кв. 4\"\n\"Садовая ул, 3\"\n"
               "\"пер. Малый Каретный, 2 корп. 1\"\n\"Москва, 5-й км, 3\"\n".encode())
    db.session.commit()
    names = street_names()
    assert names[0] == "улица Ленина"  # two buildings
    assert set(names) == {"улица Ленина", "проспект Мира", "улица Садовая", "переулок Малый Каретный"}
    assert street_names(limit=2) == names[:2]


def test_prompt_names_the_answering_operator_and_no_citizen(ctx, no_cache):
    anna = UserFactory(role="operator", full_name="Анна Смирнова")
    UserFactory(role="operator", full_name="Мария Ковалёва")
    citizen = CitizenFactory(full_name="Петров Иван Сергеевич", address="г. Москва, ул. Ленина, д. 5")
    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n".encode())
    db.session.commit()
    text = vocabulary.prompt_for(anna.id)
    assert text.startswith(ctx.config["CRM_HOTLINE_NAME"] + ", оператор Анна.")
    assert "Мария" not in text and "Смирнова" not in text
    assert "ГВС" in text and "аварийную службу" in text and "улица Ленина" in text
    assert "Петров" not in text and str(citizen.id) not in text
    # a call nobody answered through the PBX (an upload): the active operators' first names
    assert "оператор Анна, Мария." in vocabulary.prompt_for(None)


def test_streets_are_cached_in_redis(ctx, no_cache):
    import_csv("address\n\"ул. Лесная, д. 1\"\n".encode())
    db.session.commit()
    assert "улица Лесная" in vocabulary.prompt_for(None)
    import_csv("address\n\"ул. Школьная, д. 2\"\n\"ул. Школьная, д. 3\"\n".encode())
    db.session.commit()
    assert "Школьная" not in vocabulary.prompt_for(None)  # cached for CRM_VOCABULARY_TTL_S
    assert redis_connection(ctx).ttl(no_cache) > 0
    redis_connection(ctx).delete(no_cache)
    assert "Адреса: улица Школьная, улица Лесная." in vocabulary.prompt_for(None)


def test_prompt_can_be_switched_off(ctx, no_cache, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_VOCABULARY_PROMPT", False)
    assert vocabulary.prompt_for(None) is None


@pytest.mark.model
def test_prompt_spells_the_greeting_and_keeps_silence_silent(run, tmp_path):
    from tests.speech import BAD, CALLS, assert_no_phantom, hold_music, norm, write_wav

    prompt = vocabulary.compose("Горячая линия жилищно-коммунального хозяйства", ["Анна"],
                                vocabulary.TOPIC_TERMS, ("улица Центральная", "улица Молодёжная", "улица Школьная"))
    call = CALLS / "dev_call_01_hot_water.stereo8k.wav"
    with_prompt = run(call, prompt=prompt)
    greeting = norm(with_prompt.segments[0]["text"])
    assert "жилищно коммунального хозяйства" in greeting and "оператор анна" in greeting
    # the prompt is context, never output
    assert "гвс" not in norm(with_prompt.text) and "молодежная" not in norm(with_prompt.text)
    for silent in (BAD / "t01_silence30_ulaw.wav", write_wav(tmp_path / "hold.wav", hold_music(40.0, 8000))):
        res = run(silent, prompt=prompt)
        assert_no_phantom(res)
        assert res.segments == [], res.segments


def test_a_copied_prompt_is_recognised_and_the_greeting_is_not():
    from crm.calls.transcription.decoder import copies_prompt, prompt_ngrams

    grams = prompt_ngrams(vocabulary.compose("Горячая линия жилищно-коммунального хозяйства", ["Тест"],
                                             vocabulary.TOPIC_TERMS, ("улица Центральная", "улица Школьная")))
    # what Whisper wrote on dev_call_01 with an operator's name the audio does not have
    assert copies_prompt("Горячая линия жилищно-коммунального хозяйства, оператор Тест. "
                         "Звонят про КВС и стояк в горячий водой во всем подъезде", grams)
    assert copies_prompt("Адреса: улица Центральная, улица Школьная.", grams)
    for speech in ("Горячая линия жилищно-коммунального хозяйства, оператор Тест, здравствуйте",
                   "Я зарегистрировала заявку и передала её в аварийную службу. Мастер свяжется",
                   "Перерасчёт делается по заявлению в управляющую компанию.",
                   "У нас стояк течёт, отопление не работает", "Улица Садовая, дом 5, квартира 17"):
        assert not copies_prompt(speech, grams), speech


def test_vocabulary_words_and_what_mentions_them():
    """A short mono clip is decoded with the prompt only where an unprompted decoding has one of the
    prompt's own words (names, terms, streets, the line's name), in any case form; the prompt's frame
    words («оператор», «улица», «звонят про») and the words of ordinary IVR prompts and prose do not count."""
    from crm.calls.transcription.decoder import mentions_vocabulary, vocabulary_words

    vocab = vocabulary_words(vocabulary.compose("Горячая линия жилищно-коммунального хозяйства", ["Анна"],
                                                vocabulary.TOPIC_TERMS, ("улица Садовая", "проспект Мира")))
    assert {"горячая", "анна", "гвс", "стояк", "садовая", "мира", "управляющую"} <= vocab
    assert not vocab & {"оператор", "улица", "проспект", "звонят", "про", "адреса"}
    for heard in ("Горячие линии жилищинокому", "У нас нет ГВС", "Стояк течёт", "на Садовой пятнадцать",
                  "аварийная служба не приехала", "это управляющая компания", "оператор Ана"):
        assert mentions_vocabulary(heard, vocab), heard
    for ivr_or_prose in ("Введите номер оператора и нажмите решетку", "Она пошла через улицу",
                         "Ваш звонок является первым в очереди", "Конференция не может быть расширена",
                         "в междузвездном пространстве носятся осколки планет погибших миров", ""):
        assert not mentions_vocabulary(ivr_or_prose, vocab), ivr_or_prose
    assert not mentions_vocabulary("Горячая линия", frozenset())  # no prompt, nothing to mention


@pytest.mark.model
def test_a_short_clip_takes_the_prompt_only_where_it_has_the_hotlines_words(run, tmp_path):
    """The greeting of dev_call_01 cut out as a short mono clip (the operator's channel, 0-9 s) is
    decoded without the prompt first («Горячие линии жилищ…»), heard to have the line's words and
    decoded again with the prompt: spelled as the hotline spells it. A short clip without such words
    (a codec sentence of read prose) comes out exactly as without any prompt."""
    from crm.calls.transcription.audio import decode
    from tests.speech import CALLS, DATA, norm, write_wav

    prompt = vocabulary.compose("Горячая линия жилищно-коммунального хозяйства", ["Анна"],
                                vocabulary.TOPIC_TERMS, ("улица Центральная", "улица Молодёжная", "улица Школьная"))
    operator = decode(CALLS / "dev_call_01_hot_water.stereo8k.wav").channels[0]  # 16 kHz
    clip = write_wav(tmp_path / "greeting.wav", operator[: 9 * 16000], 16000)
    plain = norm(run(clip).text)
    assert "жилищно коммунального хозяйства" not in plain  # what the prompt is there to mend
    prompted = norm(run(clip, prompt=prompt).text)
    assert "жилищно коммунального хозяйства" in prompted and "оператор анна" in prompted
    assert "гвс" not in prompted and "центральная" not in prompted

    prose = DATA / "speech-ru" / "codecs" / "ru_0002__pstn_alaw8k.wav"
    assert run(prose, prompt=prompt).to_json()["segments"] == run(prose).to_json()["segments"]


def test_prompt_without_a_database_keeps_the_line_and_the_terms(app_config, tmp_path):
    """``crm transcribe`` needs no database (README): where it cannot be read (here an empty SQLite
    file, no tables), the prompt has the line's name and the terms, no staff and no streets."""
    from crm import create_app

    bare = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
                       "CRM_HOTLINE_NAME": "Горячая линия ЖКХ Тестограда"})
    with bare.app_context():
        assert vocabulary.prompt_for(None) == vocabulary.compose("Горячая линия ЖКХ Тестограда", [],
                                                                 vocabulary.TOPIC_TERMS, ())
        assert vocabulary.prompt_for(7) == vocabulary.prompt_for(None)
        from crm.db import db
        db.engine.dispose()


def test_an_operator_named_by_hand_goes_into_the_prompt_with_or_without_a_database(ctx, no_cache, app_config, tmp_path):
    """``crm transcribe --operator Анна``: the name said in the greeting, instead of the accounts."""
    from crm import create_app

    UserFactory(role="operator", full_name="Ольга Иванова")
    db.session.commit()
    assert "оператор Анна." in vocabulary.prompt_for(None, "Анна")
    assert "Ольга" not in vocabulary.prompt_for(None, "Анна") and "Ольга" in vocabulary.prompt_for(None)
    bare = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    with bare.app_context():
        assert vocabulary.prompt_for(None, "Анна") == vocabulary.compose(
            bare.config["CRM_HOTLINE_NAME"], ["Анна"], vocabulary.TOPIC_TERMS, ())
        from crm.db import db as bare_db
        bare_db.engine.dispose()
