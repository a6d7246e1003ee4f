"""What a call says: every event type in English and Spanish, words made for
the ear (no web addresses, ids spelled out, dates in full), an answering
machine that never hears the notice, and the facts each SMS gives."""

import re
import shutil

import jinja2
import pytest
from test_rendering import event

from savin.rendering import TEMPLATE_DIR, Renderer, TemplateError, label
from savin.rendering.filters import format_date, format_datetime
from savin.rendering.voice import RenderedVoice, VoiceTemplate, aloud, phone, spell, spoken_money

LANGUAGES = ("en", "es")
TIMEZONE = "America/Chicago"
NAME, OFFENDER_ID = "John Q. Doe", "MO-1048576"
SPELLED_ID = "M O 1 0 4 8 5 7 6"
OFFICE = phone("1-800-555-0199")
SAY = {"en": ("en-US", "Polly.Joanna"), "es": ("es-MX", "Polly.Mia")}


def event_types(language: str, channel: str) -> set[str]:
    return {p.name.split(".")[0] for p in (TEMPLATE_DIR / language).glob(f"*.{channel}.j2")} - {"base"}


SMS_TYPES = sorted(event_types("en", "sms"))


@pytest.fixture(scope="module")
def envs():
    """The environments the renderer loads every channel's templates from."""
    return Renderer()._envs


def call(envs, event_type: str, language: str = "en", **changes) -> RenderedVoice:
    template = VoiceTemplate.load(envs, f"{language}/{event_type}.voice.j2", language, event_type)
    return template.render(event(event_type, **changes), TIMEZONE)


# ---- which templates ------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_voice_templates_exist_for_exactly_the_event_types_with_sms(language):
    assert event_types(language, "voice") == event_types(language, "sms") == set(SMS_TYPES)
    assert (TEMPLATE_DIR / language / "base.voice.j2").is_file()


#: What a template takes from the event: ``p.facility``, ``event.occurred_at``.
_FACT = re.compile(r"\b(p\.\w+|event\.\w+)")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", SMS_TYPES)
def test_a_call_uses_every_fact_its_sms_uses(event_type, language):
    def facts(channel: str) -> set[str]:
        return set(_FACT.findall((TEMPLATE_DIR / language / f"{event_type}.{channel}.j2").read_text()))

    assert facts("sms") <= facts("voice")


# ---- every call, as a listener hears it ----------------------------------

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}|T\d{2}:\d{2}|\d{2}:\d{2}:\d{2}|[+-]\d{2}:\d{2}\b")
#: Abbreviations and symbols a voice misreads or reads as something else ("$" as pesos in es-MX).
_MISREAD = re.compile(r"\b(Dr|St|Ave|Rd|Blvd|Hwy|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec|ID|MO|USD)\b|[$&#/()]")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", SMS_TYPES)
def test_every_event_type_is_a_call_made_for_the_ear(envs, event_type, language):
    out = call(envs, event_type, language)
    assert (out.language, out.voice) == SAY[language]
    for part in (out.intro, out.pin_prompt, out.message, out.confirm_prompt, out.machine_message, out.goodbye):
        assert part and "\n" not in part and "  " not in part
        assert not re.search(r"https?|://|www\.", part, re.IGNORECASE)
        assert _ISO.search(part) is None, part
        assert _MISREAD.search(part) is None, part
        assert re.search(r"\d-\d", part) is None, part  # a dashed number is read as a minus or a range
        assert OFFENDER_ID not in part and "1048576" not in part
    assert NAME in out.message and SPELLED_ID in out.message
    assert OFFICE in out.message and OFFICE in out.machine_message and OFFICE in out.goodbye
    assert out.message.endswith(".")


def spoken_when(ev: dict, language: str) -> str:
    """The day or time an event's notice is about, in full, as the filters write it."""
    p = ev["payload"]
    if "starts_at" in p:
        return format_datetime(p["starts_at"], TIMEZONE, language, "long")
    if "projected_release_date" in p:
        return format_date(p["projected_release_date"], language, "long")
    if "retracted_occurred_at" in p:
        return format_date(p["retracted_occurred_at"], language, "long", timezone=TIMEZONE)
    return format_datetime(ev["occurred_at"], TIMEZONE, language, "long")


#: The event types whose SMS gives a day or a time.
DATED = [t for t in SMS_TYPES if "|date" in (TEMPLATE_DIR / "en" / f"{t}.sms.j2").read_text()]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", DATED)
def test_the_day_and_time_its_sms_gives_are_spoken_in_full(envs, event_type, language):
    assert spoken_when(event(event_type), language) in call(envs, event_type, language).message


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_retraction_names_the_withdrawn_notice(envs, language):
    message = call(envs, "EVENT_RETRACTED", language).message
    assert ("was released" if language == "en" else "la salida en libertad") in message
    assert ("sent in error" if language == "en" else "se envió por error") in message


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", SMS_TYPES)
def test_places_and_offices_are_said(envs, event_type, language):
    ev = event(event_type)
    message = call(envs, event_type, language).message
    for field in ("facility", "from_facility", "to_facility", "district_office", "location"):
        if field in ev["payload"]:
            assert aloud(ev["payload"][field], language=language) in message


@pytest.mark.parametrize("language", LANGUAGES)
def test_free_text_with_a_web_address_a_phone_number_and_abbreviations_is_read_aloud(envs, language):
    how = "Register at https://parole.example.gov/hearings?id=7 or call (573) 751-8488 by Mar 3."
    out = call(envs, "HEARING_SCHEDULED", language, payload={"how_to_attend": how, "location": "12 Main St, St. Louis"})
    assert "http" not in out.message and "example.gov" not in out.message
    assert ("Register at the website" if language == "en" else "Register at el sitio web") in out.message
    assert "5 7 3, 7 5 1, 8 4 8 8" in out.message and "by March 3." in out.message
    assert "12 Main Street, St. Louis" in out.message


@pytest.mark.parametrize("decision", ["granted", "denied", "continued", "deferred"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_hearing_decision_is_said(envs, decision, language):
    message = call(envs, "HEARING_DECISION", language, payload={"decision": decision}).message
    assert label("decision", decision, language) in message


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_cancelled_hearing_without_a_reason(envs, language):
    message = call(envs, "HEARING_CANCELLED", language, payload={"reason": None}).message
    assert ("reason" if language == "en" else "motivo") not in message
    assert "H 2 0 2 7 0 1 4 2" in message


def test_amounts_are_said_in_dollars_not_symbols(envs):
    en = call(envs, "RESTITUTION_PAYMENT", "en", payload={"amount": "250.50", "balance": "1.00"}).message
    es = call(envs, "RESTITUTION_PAYMENT", "es", payload={"amount": "250.50", "balance": "1.00"}).message
    assert "250 dollars and 50 cents" in en and "1 dollar." in en
    assert "250 dólares con 50 centavos" in es and "1 dólar." in es
    assert "2 2 S L C R 0 1 2 3 4" in en and "2 2 S L C R 0 1 2 3 4" in es


# ---- what is said before the PIN, or to an answering machine --------------

#: Words of the notices; none may reach an answering machine or come before the PIN.
EVENT_WORDS = {
    "en": r"\b(?:offender|escape|release|custody|transfer|moved|died|death|supervision|probation|parole|hearing|"
          r"pardon|commut|restitution|payment|correction\b|error|danger|9 1 1)",
    "es": r"identificación|fug|libertad|custodia|traslad|pasó|falleci|supervisión|probatoria|audiencia|"
          r"indulto|conmut|restitución|pago|corrección|error|peligro|9 1 1",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_parts_before_the_pin_and_the_machine_message_hold_nothing_of_the_notice(envs, language):
    calls = {t: call(envs, t, language) for t in SMS_TYPES}
    for part in ("intro", "pin_prompt", "confirm_prompt", "machine_message", "goodbye", "language", "voice"):
        said = {getattr(c, part) for c in calls.values()}
        assert len(said) == 1, f"{part} differs between event types"
    for event_type, out in calls.items():
        payload_text = [v for v in event(event_type)["payload"].values() if isinstance(v, str) and len(v) > 3]
        for part in (out.intro, out.pin_prompt, out.confirm_prompt, out.machine_message, out.goodbye):
            assert NAME not in part and "Doe" not in part and SPELLED_ID not in part
            assert not any(v in part or aloud(v, language=language) in part for v in payload_text)
            assert re.search(EVENT_WORDS[language], part, re.IGNORECASE) is None, part


def test_the_machine_message_says_who_called_and_how_to_reach_the_office(envs):
    en, es = call(envs, "ESCAPED", "en").machine_message, call(envs, "ESCAPED", "es").machine_message
    assert en.startswith("Hello. This is the Missouri Department of Corrections victim notification service")
    assert "portal" in en and f"Office of Victim Services at {OFFICE}" in en
    assert "Departamento de Correcciones de Missouri" in es and "portal" in es
    assert f"Oficina de Servicios a Víctimas al {OFFICE}" in es


def test_a_template_that_names_the_offender_before_the_pin_fails_rather_than_says_it(envs, tmp_path):
    (tmp_path / "en").mkdir()
    shutil.copy(TEMPLATE_DIR / "en" / "base.voice.j2", tmp_path / "en" / "base.voice.j2")
    (tmp_path / "en" / "ESCAPED.voice.j2").write_text(
        '{% extends "base.voice.j2" %}{% block intro %}A call about {{ offender }}.{% endblock %}'
        "{% block notice %}{{ offender }} escaped.{% endblock %}"
    )
    leaky = VoiceTemplate.load(Renderer(template_dir=tmp_path)._envs, "en/ESCAPED.voice.j2", "en", "ESCAPED")
    with pytest.raises(TemplateError, match="offender"):
        leaky.render(event("ESCAPED"), TIMEZONE)


# ---- Spanish ----------------------------------------------------------------


def test_the_spanish_call_is_spanish(envs):
    out = call(envs, "ESCAPED", "es")
    assert out.intro.startswith("Hola. Le habla el servicio de notificación a víctimas")
    assert "marque su PIN" in out.pin_prompt and "tecla de numeral" in out.pin_prompt
    assert "oprima 1 para confirmar que escuchó este mensaje" in out.confirm_prompt
    assert "Oprima 2 para escucharlo de nuevo" in out.confirm_prompt
    assert out.goodbye.endswith("Hasta luego.")
    assert "se fugó de" in out.message and "Si está en peligro inmediato, cuelgue y llame al 9 1 1" in out.message
    assert "con número de identificación" in out.message and "viernes 20 de noviembre de 2026" in out.message


@pytest.mark.parametrize("event_type", SMS_TYPES)
def test_no_english_wording_in_a_spanish_call(envs, event_type):
    # Producers' free text (facility names, directions) stays as written; the wording is Spanish.
    out = call(envs, event_type, "es")
    ev = event(event_type)
    said = " ".join((out.intro, out.pin_prompt, out.message, out.confirm_prompt, out.machine_message, out.goodbye))
    for value in ev["payload"].values():
        if isinstance(value, str):
            said = said.replace(aloud(value, language="es"), "")
    said = said.replace(NAME, "")
    assert re.search(r"\b(the|offender|number|call|press|Office|please|you|was|on|at|and)\b", said) is None, said
    assert "Oficina de Servicios a Víctimas" in out.message
    # Accents a voice needs to stress the words right.
    assert re.search(r"\b(numero|identificacion|Victimas|oficina de supervision|fugo|salio|esta en)\b", said) is None


# ---- the helpers templates call -------------------------------------------


def test_spell_says_each_letter_and_digit():
    assert spell("MO-1048576") == SPELLED_ID
    assert spell("h-2027.0142:a") == "H 2 0 2 7 0 1 4 2 A"


def test_phone_says_digits_in_their_groups():
    assert phone("1-800-555-0199") == "1, 8 0 0, 5 5 5, 0 1 9 9"
    assert phone("(573) 751-8488") == "5 7 3, 7 5 1, 8 4 8 8"


@pytest.mark.parametrize(("amount", "currency", "en", "es"), [
    ("4500.00", "USD", "4500 dollars", "4500 dólares"),
    ("1.01", "USD", "1 dollar and 1 cent", "1 dólar con 1 centavo"),
    ("0.50", "USD", "0 dollars and 50 cents", "0 dólares con 50 centavos"),
    ("1250.00", "EUR", "1250 E U R", "1250 E U R"),
])
def test_spoken_money(amount, currency, en, es):
    assert spoken_money(amount, currency, language="en") == en
    assert spoken_money(amount, currency, language="es") == es


@pytest.mark.parametrize(("text", "said"), [
    ("See www.example.gov/x.", "See the website."),
    ("Parole Board, 3400 Knipp Dr, Jefferson City", "Parole Board, 3400 Knipp Drive, Jefferson City"),
    ("Meet at 1 Main St.", "Meet at 1 Main Street."),
    ("1 Main St., Jefferson City", "1 Main Street, Jefferson City"),
    ("Dr. Smith at St. Louis", "Dr. Smith at St. Louis"),
    ("by Sept. 3 or Oct 14", "by September 3 or October 14"),
    ("Mar the day", "Mar the day"),
    ("Call 1-573-751-8488.", "Call 1, 5 7 3, 7 5 1, 8 4 8 8."),
    ("Case 22SL-CR01234 stays", "Case 22SL-CR01234 stays"),
])
def test_aloud(text, said):
    assert aloud(text, language="en") == said


def test_a_voice_template_that_does_not_exist_is_not_found(envs):
    with pytest.raises(jinja2.TemplateNotFound):
        VoiceTemplate.load(envs, "en/NO_SUCH_EVENT.voice.j2", "en", "NO_SUCH_EVENT")


def test_a_missing_fact_is_an_error_not_a_silence(envs):
    template = VoiceTemplate.load(envs, "en/ESCAPED.voice.j2", "en", "ESCAPED")
    ev = event("ESCAPED")
    ev["payload"] = {}
    with pytest.raises(TemplateError, match="facility"):
        template.render(ev, TIMEZONE)

