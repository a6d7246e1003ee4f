"""SMS segment budgets: every SMS of every event type, in both languages, fits
its event type's budget with the longest values the schema allows and long
accented names, counted as the text is sent (GSM-7, or UCS-2 as soon as one
character needs it). Names are only ever cut short with "...", never respelled."""

import json
import math
import unicodedata
from pathlib import Path

import pytest
from support import EVENTS

from savin.domain.vocabulary import NOTICE_KINDS
from savin.rendering import RenderedSMS, Renderer, gsm
from savin.schemas.events import Urgency, parse_event

LANGUAGES = ("en", "es")
SENDER = {"en": "MO Victim Notification: ", "es": "Notificación a víctimas MO: "}
STOP = {"en": " Reply STOP to opt out", "es": " Responda STOP para cancelar"}

#: Free-text payload fields and the longest value the schema allows.
FREE_TEXT = {
    "facility": 200, "from_facility": 200, "to_facility": 200, "district_office": 200, "location": 200,
    "hearing_id": 200, "case_number": 200, "reason": 200, "how_to_attend": 500,
}

LONG_NAMES = {
    "accented": ("María de los Ángeles Núñez Peña Güemes Ibáñez Muñoz " * 5)[:200],
    "no GSM-7 vowels": ("Ángel Íñigo Óscar Úrsula Díaz Gómez Martínez " * 5)[:200],
    "one word": ("Ñúñezóáíú" * 23)[:200],
    "Polish": ("Łukasz Żółć-Brzęczyszczykiewicz " * 7)[:200],
    "decomposed": unicodedata.normalize("NFD", "José Ángel Núñez Peña " * 10)[:200],
    "ASCII": ("Maximilian Bartholomew Featherstonehaugh-Wolfeschlegelsteinhausen " * 4)[:200],
}
#: Names as registrants know them; the example values with these fit uncut.
REAL_NAMES = ("José Ángel Núñez Peña", "María de los Ángeles Núñez Peña Güemes", "Zoë O’Connor-Brontë")


def words(n: int) -> str:
    return ("Centro de Reinserción Social Número Cuatro de Jefferson City, Misuri " * 10)[:n]


def event(event_type: str, name: str, *, longest: bool = False) -> dict:
    doc = json.loads((EVENTS / f"{event_type}.json").read_text())
    doc["offender_name"] = name
    if longest:
        doc["payload"].update({k: words(n) for k, n in FREE_TEXT.items() if k in doc["payload"]})
    return parse_event(json.dumps(doc)).model_dump(mode="json")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def sms(renderer, ev, language) -> RenderedSMS:
    out = renderer.render(ev, "sms", language, "America/Chicago")
    assert isinstance(out, RenderedSMS)
    return out


def counted(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments) worked out here, apart from gsm.count."""
    if all(c in gsm.GSM_BASIC or c in gsm.GSM_EXTENSION for c in text):
        septets = len(text) + sum(c in gsm.GSM_EXTENSION for c in text)
        return "GSM-7", septets, 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", units, 1 if units <= 70 else math.ceil(units / 67)


def kept_of(name: str, text: str) -> int:
    """How much of ``name`` the text shows: all of it, or a prefix followed by "..."."""
    name = unicodedata.normalize("NFC", name)
    if name in text:
        return len(name)
    kept = next((n for n in range(len(name), 0, -1) if name[:n].rstrip(" ,-") + "..." in text), 0)
    assert kept, "the name is neither whole nor cut with '...'"
    return kept


def within_budget(renderer, event_type: str, language: str, name: str, ack_code: str | None = None):
    """(event, SMS, encoding) with the example values and with the longest, each checked to be
    counted as sent and to fit its event type's budget."""
    for longest in (False, True):
        ev = event(event_type, name, longest=longest)
        out = renderer.render(ev, "sms", language, "America/Chicago", ack_code=ack_code)
        encoding, units, segments = counted(out.text)
        assert (out.segments.encoding, out.segments.units, out.segments.segments) == (encoding, units, segments)
        assert segments <= NOTICE_KINDS[event_type].sms_segments
        yield ev, out, encoding


def test_budgets_by_urgency():
    # Correct Spanish is UCS-2 (67 units a part): urgent notices carry who, where, when and
    # what to do; hearings carry directions; the rest fit in four parts.
    for event_type, spec in NOTICE_KINDS.items():
        if event_type in ("HEARING_SCHEDULED", "HEARING_RESCHEDULED"):
            assert spec.sms_segments == 6
        else:
            assert spec.sms_segments == (5 if spec.urgency is Urgency.URGENT else 4)


@pytest.mark.parametrize("name", list(LONG_NAMES.values()), ids=list(LONG_NAMES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_every_sms_fits_its_budget_with_the_longest_values(renderer, event_type, language, name):
    for ev, out, encoding in within_budget(renderer, event_type, language, name):
        values = [name] + [v for v in ev["payload"].values() if isinstance(v, str)]
        assert encoding == ("GSM-7" if language == "en" and all(map(gsm.is_gsm, values)) else "UCS-2")
        assert out.text.startswith(SENDER[language]) and out.text.endswith(STOP[language])
        assert "MO-1048576" in out.text
        # A name is cut at a word where it can be, and keeps enough to be recognised.
        assert kept_of(name, out.text) >= 25
        if event_type in ("ESCAPED", "ABSCONDED"):
            assert "911" in out.text


@pytest.mark.parametrize("name", REAL_NAMES)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_real_names_and_the_example_values_fit_in_full(renderer, event_type, language, name):
    ev = event(event_type, name)
    out = sms(renderer, ev, language)
    assert out.text == renderer.template(event_type, "sms", language).text(ev, "America/Chicago", compact=False)
    assert unicodedata.normalize("NFC", name) in out.text
    assert out.segments.segments <= NOTICE_KINDS[event_type].sms_segments


def test_the_longest_spanish_sms_of_each_urgency(renderer):
    # What a registrant pays for in the worst case: the budget, and no more.
    worst: dict[str, int] = {}
    for event_type, spec in NOTICE_KINDS.items():
        for name in LONG_NAMES.values():
            out = sms(renderer, event(event_type, name, longest=True), "es")
            assert out.segments.encoding == "UCS-2"
            key = "hearing" if spec.sms_segments == 6 else spec.urgency.value
            worst[key] = max(worst.get(key, 0), out.segments.segments)
    assert worst == {"urgent": 5, "routine": 4, "hearing": 6}


def test_english_stays_gsm7_and_typography_is_not_what_makes_ucs2(renderer):
    ev = event("RELEASED", "Seán O’Brien-Smith")  # á is a letter: UCS-2, the apostrophe as written
    out = sms(renderer, ev, "en")
    assert out.segments.encoding == "UCS-2" and "Seán O’Brien-Smith" in out.text
    out = sms(renderer, event("RELEASED", "Sean O’Brien–Smith"), "en")  # only typography outside GSM-7
    assert out.segments.encoding == "GSM-7" and "Sean O'Brien-Smith" in out.text


def test_a_text_that_cannot_fit_is_cut_keeping_the_opt_out_line(tmp_path):
    base = (Path(__file__).resolve().parent.parent / "savin" / "templates" / "es" / "base.sms.j2").read_text()
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "base.sms.j2").write_text(base)
    (tmp_path / "es" / "ESCAPED.sms.j2").write_text(
        '{% extends "base.sms.j2" %}{% block body %}' + "Se fugó de la prisión. " * 30 + "{% endblock %}"
    )
    out = Renderer(template_dir=tmp_path).render(event("ESCAPED", "Ana"), "sms", "es", "UTC")
    assert out.segments.encoding == "UCS-2" and out.segments.segments == NOTICE_KINDS["ESCAPED"].sms_segments
    assert out.text.startswith(SENDER["es"] + "Se fugó de la prisión.")
    assert out.text.endswith("..." + STOP["es"])
    assert out.segments.units > 67 * (out.segments.segments - 1)  # the room is used
