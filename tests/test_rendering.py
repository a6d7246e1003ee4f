"""Rendering events into SMS and email: every template, languages, timezones,
the retraction's wording, escaping, template faults and the channel classes.
Budgets are in test_rendering_budgets.py, Spanish spelling in
test_rendering_spanish.py."""

import json

import pytest
from support import EVENTS

from savin.domain.vocabulary import NOTICE_KINDS
from savin.rendering import (
    CHANNEL_TEMPLATES,
    ChannelTemplate,
    EmailLinks,
    EmailTemplate,
    RenderedEmail,
    RenderedSMS,
    Renderer,
    SMSTemplate,
    TemplateError,
    format_date,
    format_money,
    gsm,
    label,
)
from savin.rendering.voice import VoiceTemplate
from savin.schemas.events import parse_event
from savin.schemas.payloads import RetractableType

LANGUAGES = ("en", "es")
RETRACTABLE = RetractableType.__args__

SENDER = {"en": "MO Victim Notification:", "es": "Notificación a víctimas MO:"}
STOP = {"en": "Reply STOP to opt out", "es": "Responda STOP para cancelar"}
OFFICE = {"en": "Office of Victim Services", "es": "Oficina de Servicios a Víctimas"}
LINKS = EmailLinks(unsubscribe="https://notify.example.gov/unsubscribe/T0KEN.s1g", manage="https://notify.example.gov/manage")


def event(event_type: str, *, payload: dict | None = None, **envelope) -> dict:
    """The example event of ``event_type`` with changes, validated and in JSON mode."""
    doc = json.loads((EVENTS / f"{event_type}.json").read_text())
    doc.update(envelope)
    doc["payload"].update(payload or {})
    return parse_event(json.dumps(doc)).model_dump(mode="json")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def sms(renderer, ev, language="en", timezone="America/Chicago") -> RenderedSMS:
    out = renderer.render(ev, "sms", language, timezone)
    assert isinstance(out, RenderedSMS)
    return out


def email(renderer, ev, language="en", timezone="America/Chicago") -> RenderedEmail:
    out = renderer.render(ev, "email", language, timezone, links=LINKS)
    assert isinstance(out, RenderedEmail)
    return out


# ---- every template -------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_every_example_renders_as_sms(renderer, event_type, language):
    ev = event(event_type)
    out = sms(renderer, ev, language)
    assert out.text.startswith(SENDER[language] + " ")
    assert out.text.endswith(" " + STOP[language])
    assert "John Q. Doe" in out.text and "MO-1048576" in out.text
    assert "\n" not in out.text and "  " not in out.text
    assert out.segments == gsm.count(out.text)
    # English stays GSM-7; correct Spanish needs á, í, ó or ú, so it is UCS-2.
    assert out.segments.encoding == ("GSM-7" if language == "en" else "UCS-2")
    assert out.segments.segments <= NOTICE_KINDS[event_type].sms_segments
    # The example fits in the full wording, nothing cut.
    full = renderer.template(event_type, "sms", language).text(ev, "America/Chicago", compact=False)
    assert out.text == full and "..." not in out.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_every_example_renders_as_email(renderer, event_type, language):
    out = email(renderer, event(event_type), language)
    assert "John Q. Doe" in out.subject and "MO-1048576" in out.subject
    assert "\n" not in out.subject
    assert "John Q. Doe" in out.text and OFFICE[language] in out.text
    assert "Missouri Department of Corrections, Office of Victim Services" in out.text
    assert "{" not in out.text and "<" not in out.text
    assert out.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in out.html
    assert f"<title>{out.subject}</title>" in out.html
    assert "<p>" in out.html and "John Q. Doe" in out.html and "Missouri Department of Corrections" in out.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_emails_footer_links_to_stop_email_and_to_manage(renderer, language):
    out = email(renderer, event("RELEASED"), language)
    assert out.unsubscribe == LINKS.unsubscribe
    footer = out.text.split("\n---\n", 1)[1]
    assert LINKS.unsubscribe in footer and LINKS.manage in footer
    assert f'<a href="{LINKS.unsubscribe}"' in out.html and f'<a href="{LINKS.manage}"' in out.html
    # It promises only what works: nothing reads replies to an email.
    assert "STOP" not in out.text and "STOP" not in out.html
    assert "reply" not in out.text.lower() and "responda" not in out.text.lower()
    wording = {"en": ("To stop getting these notices by email, open this link:", "Stop getting these notices by email"),
               "es": ("Para dejar de recibir estos avisos por correo electrónico, abra este enlace:",
                      "Dejar de recibir estos avisos por correo electrónico")}[language]
    assert wording[0] in footer and f">{wording[1]}</a>" in out.html


def test_an_email_without_its_links_is_not_rendered(renderer):
    with pytest.raises(TemplateError, match="links"):
        renderer.render(event("RELEASED"), "email", "en", "America/Chicago")


def test_link_maker_signs_an_unsubscribe_link_for_email_slots_only():
    import datetime as dt

    from savin.domain.consent import Slot, read_unsubscribe_token
    from savin.rendering import LinkMaker

    now = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    maker = LinkMaker("https://notify.example.gov/", b"k" * 32, clock=lambda: now)
    links = maker.for_contact("R-1", "email", 1)
    assert links.manage == "https://notify.example.gov/manage"
    base, token = links.unsubscribe.rsplit("/", 1)
    assert base == "https://notify.example.gov/unsubscribe" and "R-1" not in links.unsubscribe
    assert read_unsubscribe_token(b"k" * 32, token, now + dt.timedelta(days=59)) == Slot("R-1", "email", 1)
    assert read_unsubscribe_token(b"k" * 32, token, now + dt.timedelta(days=61)) is None
    assert read_unsubscribe_token(b"x" * 32, token, now) is None
    assert maker.for_contact("R-1", "sms", 0) is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_event_type_has_its_own_subject_and_sms(renderer, language):
    subjects = {email(renderer, event(t), language).subject for t in NOTICE_KINDS}
    texts = {sms(renderer, event(t), language).text for t in NOTICE_KINDS}
    assert len(subjects) == len(NOTICE_KINDS)
    assert len(texts) == len(NOTICE_KINDS)


def test_urgent_subjects_say_so(renderer):
    assert email(renderer, event("ESCAPED")).subject.startswith("URGENT")
    assert email(renderer, event("ABSCONDED"), "es").subject.startswith("URGENTE")


# ---- languages, time, money, labels ---------------------------------------


def test_unknown_language_falls_back_to_the_default(renderer):
    ev = event("HEARING_SCHEDULED")
    assert renderer.render(ev, "sms", "fr", "America/Chicago") == renderer.render(ev, "sms", "en", "America/Chicago")
    assert email(renderer, ev, "fr") == email(renderer, ev, "en")


def test_default_language_is_configurable():
    es = Renderer(default_language="es")
    assert sms(es, event("RELEASED"), "fr").text.startswith(SENDER["es"] + " ")


@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_spanish_notices_are_in_spanish(renderer, event_type):
    ev = event(event_type)
    es_sms, en_sms = sms(renderer, ev, "es").text, sms(renderer, ev, "en").text
    spanish = ("libertad", "audiencia", "fugó", "custodia", "centro", "falleció", "condena", "indulto",
               "restitución", "aviso", "paradero")
    assert any(w in es_sms for w in spanish)
    assert not any(w in en_sms for w in spanish)
    assert "Responda" in es_sms and "Reply" not in es_sms


def test_released_and_hearing_wording(renderer):
    assert "salió en libertad de Jefferson City Correctional Center" in sms(renderer, event("RELEASED"), "es").text
    assert "was released from Jefferson City Correctional Center" in sms(renderer, event("RELEASED"), "en").text
    for t in ("HEARING_SCHEDULED", "HEARING_RESCHEDULED", "HEARING_CANCELLED", "HEARING_DECISION"):
        assert "audiencia" in sms(renderer, event(t), "es").text
        assert "hearing" in sms(renderer, event(t), "en").text


def test_times_are_shown_in_the_registrants_timezone(renderer):
    ev = event("HEARING_SCHEDULED")  # starts 2027-02-10T09:30:00-06:00
    assert "Feb 10, 2027 9:30 AM CST" in sms(renderer, ev, "en", "America/Chicago").text
    assert "Feb 10, 2027 10:30 AM EST" in sms(renderer, ev, "en", "America/New_York").text
    assert "10 feb 2027, 9:30 CST" in sms(renderer, ev, "es", "America/Chicago").text
    assert "When: Wednesday, February 10, 2027, at 9:30 AM CST" in email(renderer, ev).text
    assert "Cuándo: miércoles 10 de febrero de 2027, a las 10:30 EST" in email(renderer, ev, "es", "America/New_York").text
    one = event("HEARING_SCHEDULED", payload={"starts_at": "2027-02-10T01:05:00-06:00"})
    assert "Cuándo: miércoles 10 de febrero de 2027, a la 1:05 CST" in email(renderer, one, "es").text


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
    assert "alrededor del 15 mar 2027" in sms(renderer, event("RELEASE_SCHEDULED"), "es").text
    assert "Monday, March 15, 2027" in email(renderer, event("RELEASE_SCHEDULED")).text
    payment = event("RESTITUTION_PAYMENT", payload={"amount": "1250.00", "balance": "1234567.05"})
    assert "$1,250.00" in sms(renderer, payment).text and "$1,234,567.05" in sms(renderer, payment).text
    assert "Monto pagado: $1,250.00 USD" in email(renderer, payment, "es").text
    assert format_money("1250", "EUR", "en") == "1,250.00 EUR"
    # The day a moment fell on where the registrant lives.
    assert format_date("2026-11-20T23:30:00-06:00", "en", timezone="America/Chicago") == "Nov 20, 2026"
    assert format_date("2026-11-20T23:30:00-06:00", "es", timezone="America/New_York") == "21 nov 2026"
    assert format_date("2026-11-20T23:30:00-06:00", "en", "long") == "Friday, November 20, 2026"
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


def test_a_retraction_names_the_notice_by_its_kind_and_date(renderer):
    ev = event("EVENT_RETRACTED")  # withdraws RELEASED of 2026-11-20T09:15:00-06:00
    en, es = sms(renderer, ev, "en").text, sms(renderer, ev, "es").text
    assert en == (
        "MO Victim Notification: Correction: our notice of Nov 20, 2026 that John Q. Doe (MO-1048576)"
        " was released was sent in error. Reason: Record entered in error by the facility."
        " We are sorry for any worry it caused. Reply STOP to opt out"
    )
    assert es == (
        "Notificación a víctimas MO: Corrección: nuestro aviso del 20 nov 2026 sobre la salida en libertad"
        " de John Q. Doe (MO-1048576) se envió por error. Motivo: Record entered in error by the facility."
        " Lamentamos la preocupación que le haya causado. Responda STOP para cancelar"
    )
    assert ev["payload"]["retracted_event_id"] not in en + es

    en_mail, es_mail = email(renderer, ev, "en"), email(renderer, ev, "es")
    assert en_mail.subject == "Correction: notice of Nov 20, 2026 sent in error: John Q. Doe (MO-1048576)"
    assert es_mail.subject == "Corrección: aviso del 20 nov 2026 enviado por error: John Q. Doe (MO-1048576)"
    assert en_mail.text.startswith(
        "Our notice of Friday, November 20, 2026, saying that John Q. Doe (offender ID MO-1048576)"
        " was released, was sent in error. Please disregard it.\n\nReason: Record entered in error by the facility.\n"
    )
    assert es_mail.text.startswith(
        "Nuestro aviso del viernes 20 de noviembre de 2026 sobre la salida en libertad de John Q. Doe"
        " (número de identificación MO-1048576) se envió por error. Por favor, no lo tenga en cuenta.\n\n"
        "Motivo: Record entered in error by the facility.\n"
    )
    assert "<p>Our notice of Friday, November 20, 2026, saying that John Q. Doe" in en_mail.html
    # The id stays in the email only as a reference for a call to the office.
    assert ev["payload"]["retracted_event_id"] in en_mail.text and ev["payload"]["retracted_event_id"] in es_mail.text


def test_a_retraction_dates_the_notice_where_the_registrant_lives(renderer):
    late = event("EVENT_RETRACTED", payload={"retracted_occurred_at": "2026-11-20T23:30:00-06:00"})
    assert "our notice of Nov 20, 2026 that" in sms(renderer, late, "en", "America/Chicago").text
    assert "our notice of Nov 21, 2026 that" in sms(renderer, late, "en", "America/New_York").text
    assert "nuestro aviso del 21 nov 2026 sobre" in sms(renderer, late, "es", "America/New_York").text
    es_mail = email(renderer, late, "es", "America/New_York").text
    assert "Nuestro aviso del sábado 21 de noviembre de 2026 sobre" in es_mail


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("retracted", RETRACTABLE)
def test_a_retraction_names_every_kind_of_notice_in_words(renderer, retracted, language):
    kind = label("event_kind", retracted, language)
    assert kind and "_" not in kind and not kind.isupper()
    ev = event("EVENT_RETRACTED", payload={"retracted_event_type": retracted})
    text, mail = sms(renderer, ev, language).text, email(renderer, ev, language)
    if language == "en":
        assert f"our notice of Nov 20, 2026 that John Q. Doe (MO-1048576) {kind} was sent in error." in text
        assert f"saying that John Q. Doe (offender ID MO-1048576) {kind}, was sent in error." in mail.text
    else:
        assert f"nuestro aviso del 20 nov 2026 sobre {kind} de John Q. Doe (MO-1048576) se envió por error." in text
        assert f"sobre {kind} de John Q. Doe (número de identificación MO-1048576) se envió por error." in mail.text
    assert retracted not in text + mail.text


def test_every_kind_has_its_own_words(renderer):
    for language in LANGUAGES:
        kinds = [label("event_kind", t, language) for t in RETRACTABLE]
        assert len(set(kinds)) == len(RETRACTABLE)
    assert label("event_kind", "ESCAPED", "es") == "la fuga"
    assert label("event_kind", "ESCAPED", "fr") == "had escaped"  # English when a language has none


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
    assert out.subject.startswith(("Release notice: <script>", "Aviso de salida en libertad: <script>"))
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
    with pytest.raises(TemplateError, match="fax"):
        renderer.render(event("RELEASED"), "fax", "en", "America/Chicago")
    with pytest.raises(TemplateError, match="event_type=PAROLE_PARTY"):
        renderer.render(event("RELEASED") | {"event_type": "PAROLE_PARTY"}, "sms", "en", "America/Chicago")


def test_a_language_cannot_reach_outside_the_template_folder(renderer):
    assert renderer.render(event("PARDON"), "sms", "../en", "UTC") == renderer.render(event("PARDON"), "sms", "en", "UTC")


# ---- one template class per channel ----------------------------------------


def test_each_channel_has_its_template_class(renderer):
    assert CHANNEL_TEMPLATES == {"sms": SMSTemplate, "email": EmailTemplate, "voice": VoiceTemplate}
    sms_template = renderer.template("RELEASED", "sms", "es")
    assert isinstance(sms_template, SMSTemplate)
    assert (sms_template.name, sms_template.language) == ("es/RELEASED.sms.j2", "es")
    assert sms_template.max_segments == NOTICE_KINDS["RELEASED"].sms_segments
    assert sms_template.stop == STOP["es"]
    assert isinstance(renderer.template("RELEASED", "email", "fr"), EmailTemplate)
    assert renderer.template("RELEASED", "email", "fr").language == "en"


def test_a_new_channel_is_one_class(tmp_path, monkeypatch):
    class VoiceTemplate(ChannelTemplate):
        channel = "voice"

        def __init__(self, name, language, template):
            super().__init__(name, language)
            self.template = template

        @classmethod
        def load(cls, envs, name, language, event_type):
            return cls(name, language, envs.text.get_template(name))

        def render(self, event, timezone):
            return " ".join(self.call(self.template, self.context(event, timezone)).split())

    monkeypatch.setitem(CHANNEL_TEMPLATES, "voice", VoiceTemplate)
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "RELEASED.voice.j2").write_text(
        "{{ offender }} was released on {{ event.occurred_at|datetime('long') }}."
    )
    said = Renderer(template_dir=tmp_path).render(event("RELEASED"), "voice", "en", "America/Chicago")
    assert said == "John Q. Doe was released on Friday, November 20, 2026, at 2:05 PM CST."
