"""Rendering events into SMS and email: every template, length budgets,
languages, timezones, escaping and template faults."""

import json
from pathlib import Path

import pytest

from savin.rendering import (
    RenderedEmail,
    RenderedSMS,
    Renderer,
    TemplateError,
    format_money,
    gsm,
)
from savin.schemas.events import EVENT_TYPES, Urgency, parse_event

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events"
LANGUAGES = ("en", "es")
URGENT = [t for t, spec in EVENT_TYPES.items() if spec.urgency is Urgency.URGENT]
ROUTINE = [t for t, spec in EVENT_TYPES.items() if spec.urgency is Urgency.ROUTINE]
HEARINGS_WITH_DETAILS = ("HEARING_SCHEDULED", "HEARING_RESCHEDULED")

SENDER = {"en": "MO Victim Notification:", "es": "Notificacion a victimas MO:"}
SENDER_UCS2 = {"en": "MO Victim Notification:", "es": "Notificación a víctimas MO:"}
STOP = {"en": "Reply STOP to opt out", "es": "Responda STOP para cancelar"}
OFFICE = {"en": "Office of Victim Services", "es": "Oficina de Servicios a Víctimas"}

#: Payload fields that are free text, with the longest value the schema allows.
FREE_TEXT = {
    "facility": 200, "from_facility": 200, "to_facility": 200, "district_office": 200, "location": 200,
    "hearing_id": 200, "case_number": 200, "reason": 200, "how_to_attend": 500,
}
LONG_NAME = ("Maximilian Bartholomew Featherstonehaugh-Wolfeschlegelsteinhausen " * 4)[:200]


def words(n: int) -> str:
    return ("Northeast Correctional Center and Probation District Office " * 10)[:n]


def event(event_type: str, *, payload: dict | None = None, **envelope) -> dict:
    """The example event of ``event_type`` with changes, validated and in JSON mode."""
    doc = json.loads((EXAMPLES / f"{event_type}.json").read_text())
    doc.update(envelope)
    doc["payload"].update(payload or {})
    return parse_event(json.dumps(doc)).model_dump(mode="json")


def maxed(event_type: str, name: str = LONG_NAME, **envelope) -> dict:
    """``event_type`` with every free-text field as long as the schema allows."""
    doc = json.loads((EXAMPLES / f"{event_type}.json").read_text())
    longest = {k: words(n) for k, n in FREE_TEXT.items() if k in doc["payload"]}
    return event(event_type, payload=longest, offender_name=name, **envelope)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def sms(renderer, ev, language="en", timezone="America/Chicago") -> RenderedSMS:
    out = renderer.render(ev, "sms", language, timezone)
    assert isinstance(out, RenderedSMS)
    return out


def email(renderer, ev, language="en", timezone="America/Chicago") -> RenderedEmail:
    out = renderer.render(ev, "email", language, timezone)
    assert isinstance(out, RenderedEmail)
    return out


def segment_budget(event_type: str) -> int:
    if EVENT_TYPES[event_type].urgency is Urgency.URGENT:
        return 2
    return 4 if event_type in HEARINGS_WITH_DETAILS else 3


# ---- every template -------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_every_example_renders_as_sms(renderer, event_type, language):
    ev = event(event_type)
    out = sms(renderer, ev, language)
    assert out.text.startswith(SENDER[language] + " ")
    assert out.text.endswith(" " + STOP[language])
    assert "John Q. Doe" in out.text and "MO-1048576" in out.text
    assert "\n" not in out.text and "  " not in out.text
    assert out.segments == gsm.count(out.text)
    assert out.segments.encoding == "GSM-7"
    assert out.segments.segments <= segment_budget(event_type)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_every_example_renders_as_email(renderer, event_type, language):
    out = email(renderer, event(event_type), language)
    assert "John Q. Doe" in out.subject and "MO-1048576" in out.subject
    assert "\n" not in out.subject
    assert "John Q. Doe" in out.text and OFFICE[language] in out.text
    assert "Missouri Department of Corrections, Office of Victim Services" in out.text
    assert "STOP" in out.text and "{" not in out.text and "<" not in out.text
    assert out.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in out.html
    assert f"<title>{out.subject}</title>" in out.html
    assert "<p>" in out.html and "John Q. Doe" in out.html and "Missouri Department of Corrections" in out.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_event_type_has_its_own_subject_and_sms(renderer, language):
    subjects = {email(renderer, event(t), language).subject for t in EVENT_TYPES}
    texts = {sms(renderer, event(t), language).text for t in EVENT_TYPES}
    assert len(subjects) == len(EVENT_TYPES)
    assert len(texts) == len(EVENT_TYPES)


def test_urgent_subjects_say_so(renderer):
    assert email(renderer, event("ESCAPED")).subject.startswith("URGENT")
    assert email(renderer, event("ABSCONDED"), "es").subject.startswith("URGENTE")


# ---- SMS length budgets ---------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", URGENT)
def test_urgent_sms_fit_two_segments_with_the_longest_fields(renderer, event_type, language):
    out = sms(renderer, maxed(event_type), language)
    assert out.segments.encoding == "GSM-7"
    assert out.segments.segments <= 2
    assert out.text.startswith(SENDER[language] + " ") and "Maximilian Bartholomew" in out.text
    assert "..." in out.text  # the name or the places were cut, not the message
    assert "MO-1048576" in out.text and out.text.endswith(STOP[language])


@pytest.mark.parametrize("name", ["Łukasz Żółć", ("Łukasz Żółć-Brzęczyszczykiewicz " * 7)[:200]])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", URGENT)
def test_urgent_sms_fit_two_segments_in_ucs2(renderer, event_type, language, name):
    out = sms(renderer, maxed(event_type, name), language)
    assert out.segments.encoding == "UCS-2"
    assert out.segments.segments <= 2 and out.segments.units <= 134
    assert out.text.startswith(SENDER_UCS2[language] + " ")
    assert "Łukasz" in out.text and "MO-1048576" in out.text
    assert out.text.endswith(STOP[language])


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", ["ESCAPED", "ABSCONDED"])
def test_escape_advice_survives_shortening(renderer, event_type, language):
    for name in (LONG_NAME, "Łukasz Żółć"):
        assert "911" in sms(renderer, maxed(event_type, name), language).text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", ROUTINE)
def test_routine_sms_fit_their_budget_with_the_longest_fields(renderer, event_type, language):
    for name in (LONG_NAME, "Łukasz Żółć", ("Żółć " * 40)[:200]):
        out = sms(renderer, maxed(event_type, name), language)
        assert out.segments.segments <= segment_budget(event_type) <= 4
        assert out.segments == gsm.count(out.text)
        sender = SENDER[language] if out.segments.encoding == "GSM-7" else SENDER_UCS2[language]
        assert out.text.startswith(sender + " ")
        assert out.text.endswith(STOP[language])


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_text_that_cannot_fit_is_cut_keeping_the_opt_out_line(renderer, language):
    ev = maxed("ESCAPED", ("Żółć " * 40)[:200], offender_id="MO-" + "9" * 61)
    out = sms(renderer, ev, language)
    assert out.segments.segments <= 2
    assert out.text.endswith("... " + STOP[language])


def test_ucs2_text_keeps_its_accents(renderer):
    out = sms(renderer, event("RELEASED", offender_name="Łukasz Żółć"), "es")
    assert out.segments.encoding == "UCS-2"
    assert "Żółć" in out.text and out.text.startswith("Notificación a víctimas MO:")


def test_gsm_text_is_downgraded(renderer):
    out = sms(renderer, event("RELEASED", offender_name="José Ramón Núñez"), "es")
    assert out.segments.encoding == "GSM-7"
    assert "José Ramon Nuñez" in out.text  # é and ñ are GSM-7, ó is not


# ---- languages, time, money, labels ---------------------------------------


def test_unknown_language_falls_back_to_the_default(renderer):
    ev = event("HEARING_SCHEDULED")
    assert renderer.render(ev, "sms", "fr", "America/Chicago") == renderer.render(ev, "sms", "en", "America/Chicago")
    assert renderer.render(ev, "email", "fr", "America/Chicago") == renderer.render(ev, "email", "en", "America/Chicago")


def test_default_language_is_configurable():
    es = Renderer(default_language="es")
    assert sms(es, event("RELEASED"), "fr").text.startswith(SENDER["es"])


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_spanish_notices_are_in_spanish(renderer, event_type):
    ev = event(event_type)
    es_sms, en_sms = sms(renderer, ev, "es").text, sms(renderer, ev, "en").text
    spanish = ("libertad", "audiencia", "fugo", "custodia", "centro", "fallecio", "condena", "indulto",
               "restitucion", "aviso", "paradero")
    assert any(w in es_sms for w in spanish)
    assert not any(w in en_sms for w in spanish)
    assert "Responda" in es_sms and "Reply" not in es_sms


def test_released_and_hearing_wording(renderer):
    assert "salio en libertad" in sms(renderer, event("RELEASED"), "es").text
    assert "was released from Jefferson City Correctional Center" in sms(renderer, event("RELEASED"), "en").text
    for t in HEARINGS_WITH_DETAILS + ("HEARING_CANCELLED", "HEARING_DECISION"):
        assert "audiencia" in sms(renderer, event(t), "es").text
        assert "hearing" in sms(renderer, event(t), "en").text


def test_times_are_shown_in_the_registrants_timezone(renderer):
    ev = event("HEARING_SCHEDULED")  # starts 2027-02-10T09:30:00-06:00
    assert "Feb 10, 2027 9:30 AM CST" in sms(renderer, ev, "en", "America/Chicago").text
    assert "Feb 10, 2027 10:30 AM EST" in sms(renderer, ev, "en", "America/New_York").text
    assert "10 feb 2027, 9:30 CST" in sms(renderer, ev, "es", "America/Chicago").text
    assert "When: Wednesday, February 10, 2027, at 9:30 AM CST" in email(renderer, ev).text
    assert "Cuándo: miércoles 10 de febrero de 2027, 10:30 EST" in email(renderer, ev, "es", "America/New_York").text


def test_times_follow_daylight_saving_and_the_24_hour_clock(renderer):
    ev = event("HEARING_SCHEDULED", payload={"starts_at": "2027-07-01T19:05:00Z"})
    assert "Jul 1, 2027 2:05 PM CDT" in sms(renderer, ev, "en").text
    assert "1 jul 2027, 14:05 CDT" in sms(renderer, ev, "es").text
    midnight = event("HEARING_SCHEDULED", payload={"starts_at": "2027-01-05T00:15:00-06:00"})
    assert "Jan 5, 2027 12:15 AM CST" in sms(renderer, midnight, "en").text
    assert "5 ene 2027, 0:15 CST" in sms(renderer, midnight, "es").text


def test_an_unknown_timezone_keeps_the_events_own_offset(renderer):
    assert "Feb 10, 2027 9:30 AM UTC-06:00" in sms(renderer, event("HEARING_SCHEDULED"), "en", "Nowhere/Atlantis").text


def test_dates_money_and_labels(renderer):
    assert "on or about Mar 15, 2027" in sms(renderer, event("RELEASE_SCHEDULED")).text
    assert "hacia el 15 mar 2027" in sms(renderer, event("RELEASE_SCHEDULED"), "es").text
    assert "Monday, March 15, 2027" in email(renderer, event("RELEASE_SCHEDULED")).text
    payment = event("RESTITUTION_PAYMENT", payload={"amount": "1250.00", "balance": "1234567.05"})
    assert "$1,250.00" in sms(renderer, payment).text and "$1,234,567.05" in sms(renderer, payment).text
    assert "Monto pagado: $1,250.00 USD" in email(renderer, payment, "es").text
    assert format_money("1250", "EUR", "en") == "1,250.00 EUR"
    released = event("RELEASED", payload={"release_type": "conditional_release"})
    assert "Release type: conditional release." in sms(renderer, released).text
    assert "Tipo de liberación: liberación condicional obligatoria." in email(renderer, released, "es").text
    granted = event("HEARING_DECISION", payload={"decision": "granted"})
    assert "parole granted" in sms(renderer, granted).text
    assert "Decisión: Libertad condicional concedida." in email(renderer, granted, "es").text


def test_optional_fields_may_be_absent(renderer):
    ev = event("HEARING_CANCELLED", payload={"reason": None})
    assert "Reason" not in sms(renderer, ev).text and "Reason" not in email(renderer, ev).text
    assert "Reason: Hearing withdrawn by the board." in sms(renderer, event("HEARING_CANCELLED")).text


def test_a_retraction_says_the_earlier_notice_was_wrong_and_why(renderer):
    ev = event("EVENT_RETRACTED")
    text = sms(renderer, ev).text
    assert "sent in error" in text and "Record entered in error by the facility" in text
    assert ev["payload"]["retracted_event_id"] not in text
    assert "se envio por error" in sms(renderer, ev, "es").text


# ---- escaping -------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_is_escaped_only_in_the_html_part(renderer, language):
    ev = event("RELEASED", offender_name="<script>alert(1)</script> Doe",
               payload={"facility": 'Fulton "R&D" <b>Center</b>'})
    out = email(renderer, ev, language)
    assert "<script>" not in out.html and "<b>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Doe" in out.html
    assert "Fulton &#34;R&amp;D&#34; &lt;b&gt;Center&lt;/b&gt;" in out.html
    assert "<script>alert(1)</script> Doe" in out.text and 'Fulton "R&D" <b>Center</b>' in out.text
    assert out.subject.startswith(("Release notice: <script>", "Aviso de liberación: <script>"))
    assert "<script>alert(1)</script>" in sms(renderer, ev, language).text


# ---- template faults ------------------------------------------------------


def test_a_missing_field_names_the_template(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "RELEASED.sms.j2").write_text("{{ offender }} left {{ p.no_such_field }}")
    with pytest.raises(TemplateError, match=r"en/RELEASED\.sms\.j2.*no_such_field"):
        Renderer(template_dir=tmp_path).render(event("RELEASED"), "sms", "en", "America/Chicago")


def test_a_missing_field_in_a_base_template_is_reported(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "base.email.j2").write_text("{% block subject %}{% endblock %} {{ victim_name }}")
    (tmp_path / "en" / "PARDON.email.j2").write_text('{% extends "base.email.j2" %}{% block subject %}x{% endblock %}')
    with pytest.raises(TemplateError, match=r"en/PARDON\.email\.j2.*victim_name"):
        Renderer(template_dir=tmp_path).render(event("PARDON"), "email", "en", "America/Chicago")


def test_a_syntax_error_names_the_template(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "PARDON.sms.j2").write_text("{% if %}")
    with pytest.raises(TemplateError, match=r"en/PARDON\.sms\.j2"):
        Renderer(template_dir=tmp_path).render(event("PARDON"), "sms", "en", "America/Chicago")


def test_no_template_names_the_event_channel_and_language(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "RELEASED.sms.j2").write_text("{{ offender }} was released. Reply STOP to opt out")
    custom = Renderer(template_dir=tmp_path)
    assert custom.render(event("RELEASED"), "sms", "es", "UTC").text == "John Q. Doe was released. Reply STOP to opt out"
    with pytest.raises(TemplateError, match=r"event_type=ESCAPED channel=sms language=es"):
        custom.render(event("ESCAPED"), "sms", "es", "UTC")
    with pytest.raises(TemplateError, match=r"event_type=RELEASED channel=email language=en"):
        custom.render(event("RELEASED"), "email", "en", "UTC")


def test_an_unknown_channel_or_event_type_is_a_template_error(renderer):
    with pytest.raises(TemplateError, match="voice"):
        renderer.render(event("RELEASED"), "voice", "en", "America/Chicago")
    with pytest.raises(TemplateError, match="event_type=PAROLE_PARTY"):
        renderer.render(event("RELEASED") | {"event_type": "PAROLE_PARTY"}, "sms", "en", "America/Chicago")


def test_a_language_cannot_reach_outside_the_template_folder(renderer):
    assert renderer.render(event("PARDON"), "sms", "../en", "UTC") == renderer.render(event("PARDON"), "sms", "en", "UTC")
