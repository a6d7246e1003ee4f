"""Spanish is written correctly and names are never respelled: every Spanish
SMS and email, rendered with accented names, keeps the names and the accented
words; no word loses its accent to fit GSM-7."""

import json
import re
import unicodedata

import pytest
from support import EVENTS

from savin.domain.vocabulary import NOTICE_KINDS
from savin.rendering import EmailLinks, Renderer
from savin.schemas.events import parse_event

LINKS = EmailLinks(unsubscribe="https://notify.example.gov/unsubscribe/T0KEN.s1g", manage="https://notify.example.gov/manage")

NAMES = (
    "José Ángel Núñez Peña",
    "Íñigo Álvarez-Ibáñez Ürquiza",
    ("María de los Ángeles Núñez Peña Güemes Ibáñez Muñoz " * 5)[:200],
    ("Óscar Úrsula Íñiguez Ángeles " * 7)[:200],
)

#: Accented words each Spanish template must show, in the SMS and in the email.
ACCENTED = {
    "RELEASED": (["salió en libertad"], ["salió en libertad", "Tipo de liberación", "número de identificación"]),
    "RELEASE_SCHEDULED": (["salida en libertad"], ["Salida en libertad prevista", "Le enviaremos"]),
    "ESCAPED": (["se fugó", "está en peligro"], ["se fugó", "Si está en peligro", "dónde y cuándo"]),
    "RECAPTURED": (["está de nuevo bajo custodia", "había fugado"], ["está de nuevo bajo custodia", "registró"]),
    "TRANSFERRED": (["cambió de centro"], ["pasó de", "liberación"]),
    "DECEASED": (["falleció", "registró"], ["falleció", "registró el fallecimiento"]),
    "SUPERVISION_STARTED": (["comenzó", "período", "Oficina de supervisión"], ["comenzó un período"]),
    "ABSCONDED": (["dejó de presentarse", "está en peligro"], ["dejó de presentarse", "informó", "cuándo la vio"]),
    "SUPERVISION_REVOKED": (["Se revocó", "supervisión"], ["Supervisión revocada", "revocación", "terminó"]),
    "SUPERVISION_DISCHARGED": (["terminó", "está bajo la supervisión"], ["terminó", "período de supervisión"]),
    "HEARING_SCHEDULED": (["Se programó", "Número de audiencia"], ["Se programó", "Cuándo:", "Dónde:", "Cómo"]),
    "HEARING_RESCHEDULED": (["Número de audiencia"], ["reprogramada", "Cuándo:", "Dónde:", "Cómo asistir"]),
    "HEARING_CANCELLED": (["Se canceló", "Número de audiencia"], ["Se canceló", "Número de audiencia"]),
    "HEARING_DECISION": (["Decisión", "Número de audiencia"], ["Decisión:", "tomó una decisión"]),
    "COMMUTATION": (["Se conmutó (se redujo)"], ["Se conmutó", "conmutación"]),
    "PARDON": (["recibió un indulto"], ["recibió un indulto", "Si tiene preguntas sobre lo que esto significa"]),
    "RESTITUTION_ORDERED": (["Se ordenó", "restitución"], ["Se ordenó", "Restitución ordenada"]),
    "RESTITUTION_PAYMENT": (["pagó", "restitución"], ["Se registró un pago de restitución"]),
    "EVENT_RETRACTED": (["Corrección:", "se envió por error"], ["Corrección:", "se envió por error"]),
}

#: Words as they read with their accents dropped; none is correct Spanish in these notices.
UNACCENTED = re.compile(
    r"\b(Notificacion|victimas?|Victimas?|fugo|salio|programo|cancelo|revoco|conmuto|fallecio|recibio|"
    r"comenzo|termino su|dejo de|envio por|ordeno|registro el|cambio de centro|pago \$|Correccion|"
    r"[Dd]ecision|liberacion|restitucion|supervision|[Nn]umero|periodo|esta en peligro|esta de nuevo|"
    r"esta bajo|Cuando:|Donde:|Como asistir|informo|tomo una|paso de|habia)(?!\w)"
)


def event(event_type: str, name: str) -> dict:
    doc = json.loads((EVENTS / f"{event_type}.json").read_text())
    doc["offender_name"] = name
    return parse_event(json.dumps(doc)).model_dump(mode="json")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def name_shown(name: str, text: str) -> bool:
    """The whole name, or at least its first 25 letters, unchanged, cut short with "..."."""
    if name in text:
        return True
    return any(name[:n].rstrip(" ,-") + "... (MO-1048576)" in text for n in range(25, len(name)))


def test_every_event_type_has_its_accented_words():
    assert set(ACCENTED) == set(NOTICE_KINDS)


@pytest.mark.parametrize("name", NAMES, ids=["short", "initial Í", "long", "long, no GSM-7 vowels"])
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_spanish_sms_keep_names_and_accents(renderer, event_type, name):
    out = renderer.render(event(event_type, name), "sms", "es", "America/Chicago")
    assert out.segments.encoding == "UCS-2"
    assert out.text.startswith("Notificación a víctimas MO: ")
    assert name_shown(name, out.text), out.text
    if len(name) < 40:
        assert name in out.text
    for phrase in ACCENTED[event_type][0]:
        assert phrase in out.text
    assert UNACCENTED.search(out.text) is None, out.text


@pytest.mark.parametrize("name", NAMES, ids=["short", "initial Í", "long", "long, no GSM-7 vowels"])
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_spanish_emails_keep_names_and_accents(renderer, event_type, name):
    out = renderer.render(event(event_type, name), "email", "es", "America/Chicago", links=LINKS)
    for part in (out.subject, out.text, out.html):
        assert name in part
        assert UNACCENTED.search(part) is None
    for phrase in ACCENTED[event_type][1]:
        assert phrase in out.subject + out.text and phrase in out.html
    assert "Oficina de Servicios a Víctimas" in out.text
    assert "Para dejar de recibir estos avisos por correo electrónico, abra este enlace" in out.text


@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_english_keeps_accented_names_too(renderer, event_type):
    name = "José Ángel Núñez Peña"
    out = renderer.render(event(event_type, name), "sms", "en", "America/Chicago")
    assert out.segments.encoding == "UCS-2" and name in out.text
    assert name in renderer.render(event(event_type, name), "email", "en", "America/Chicago", links=LINKS).text


def test_a_name_written_with_combining_accents_is_the_same_name(renderer):
    decomposed = unicodedata.normalize("NFD", "José Ángel Núñez Peña")
    assert decomposed != "José Ángel Núñez Peña"
    out = renderer.render(event("RELEASED", decomposed), "sms", "en", "America/Chicago")
    assert "José Ángel Núñez Peña" in out.text  # one letter, one UTF-16 unit each


def test_a_long_decomposed_name_is_never_cut_between_a_letter_and_its_accent(renderer):
    cut = 0
    for letters in range(70, 101):  # each "Á" is "A" and a combining accent: two code points
        name = unicodedata.normalize("NFD", "Á" * letters)
        for event_type in ("RELEASE_SCHEDULED", "RECAPTURED", "HEARING_SCHEDULED"):
            text = renderer.render(event(event_type, name), "sms", "es", "America/Chicago").text
            assert "A" not in text.replace("MO-", "").replace("STOP", "")
            assert text.count("Á") >= 25
            cut += "Á... (MO-1048576)" in text
    assert cut > 0


def test_gsm7_letters_stay_and_the_rest_make_ucs2(renderer):
    # é, ñ and ü are in GSM-7; ó is not. No letter is traded for another to stay in GSM-7.
    out = renderer.render(event("RELEASED", "Ramón Núñez"), "sms", "en", "America/Chicago")
    assert out.segments.encoding == "UCS-2" and "Ramón Núñez" in out.text
    out = renderer.render(event("RELEASED", "Renée Muñoz Müller"), "sms", "en", "America/Chicago")
    assert out.segments.encoding == "GSM-7" and "Renée Muñoz Müller" in out.text
