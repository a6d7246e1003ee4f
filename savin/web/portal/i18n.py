"""Every word the portal shows, one table per language.

The search pages' words are here; each other part of the portal keeps its
own in a ``words_<part>.py`` module beside this one (``WORDS = {"en": {...},
"es": {...}}``), merged below. A page asks for ``t["key"]``; a key missing
from a language, or two parts using one key, is a fault found by the tests,
never a blank on a page.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["DEFAULT", "LANGUAGES", "STRINGS", "strings"]

DEFAULT = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "language_name": "English",
        "service_name": "Offender status and victim notification",
        "skip_link": "Skip to main content",
        "switch_language": "Language",
        "switch_to": "Español",
        "switch_to_lang": "es",
        "error_title_prefix": "Error: ",
        "error_summary_title": "There is a problem",
        "start_title": "Find an offender's custody status",
        "start_intro": "Search by offender ID or by name to see whether a person is in custody, released "
                       "or on supervision, and when the next hearing is.",
        "start_public": "This service shows public-record information only.",
        "search_label": "Offender ID or name",
        "search_hint": "For example, MO-1001234 or Jane Doe",
        "search_button": "Search",
        "search_empty": "Enter an offender ID or a name",
        "search_too_long": "Offender ID or name must be 100 characters or fewer",
        "results_title": "Search results",
        "results_for": "Results for",
        "results_none": "No offender matches your search.",
        "results_none_help": "Check the spelling, or search by offender ID.",
        "results_some": "Offenders matching your search (at most 5 are shown):",
        "search_again": "Search again",
        "offender_id": "Offender ID",
        "status": "Status",
        "location": "Facility or office",
        "release_date": "Projected release date",
        "next_hearing": "Next hearing",
        "hearing_at": "at",
        "last_event": "Last updated",
        "not_known": "Not known",
        "none_scheduled": "None scheduled",
        "offender_not_found_title": "Offender not found",
        "offender_not_found": "We could not find an offender with that ID.",
        "back_to_search": "Back to search",
        "public_record": "This information comes from the public record. It may take a few minutes to show "
                         "a change.",
        "data_as_of": "Data from this source as of {time}.",
        "data_as_of_source": "Data from {source} as of {time}.",
        "data_stale": "We have had no updates from this source since then, so this status may be out of date.",
        "status.in_custody": "In custody",
        "status.released": "Released",
        "status.escaped": "Escaped",
        "status.on_supervision": "On supervision",
        "status.absconded": "Absconded from supervision",
        "status.discharged": "Discharged from supervision",
        "status.deceased": "Deceased",
        "status.unknown": "Not known",
        "footer": "If you are in danger, call 911.",
    },
    "es": {
        "language_name": "Español",
        "service_name": "Situación de reclusos y notificación a víctimas",
        "skip_link": "Saltar al contenido principal",
        "switch_language": "Idioma",
        "switch_to": "English",
        "switch_to_lang": "en",
        "error_title_prefix": "Error: ",
        "error_summary_title": "Hay un problema",
        "start_title": "Consultar la situación de custodia de un recluso",
        "start_intro": "Busque por número de identificación del recluso o por nombre para saber si una persona "
                       "está bajo custodia, en libertad o bajo supervisión, y cuándo es la próxima audiencia.",
        "start_public": "Este servicio solo muestra información de dominio público.",
        "search_label": "Número de identificación o nombre del recluso",
        "search_hint": "Por ejemplo, MO-1001234 o Juana Pérez",
        "search_button": "Buscar",
        "search_empty": "Escriba un número de identificación o un nombre",
        "search_too_long": "El número de identificación o el nombre debe tener 100 caracteres o menos",
        "results_title": "Resultados de la búsqueda",
        "results_for": "Resultados de",
        "results_none": "Ningún recluso coincide con su búsqueda.",
        "results_none_help": "Revise la ortografía o busque por número de identificación.",
        "results_some": "Reclusos que coinciden con su búsqueda (se muestran 5 como máximo):",
        "search_again": "Buscar de nuevo",
        "offender_id": "Número de identificación",
        "status": "Situación",
        "location": "Centro penitenciario u oficina",
        "release_date": "Fecha prevista de salida en libertad",
        "next_hearing": "Próxima audiencia",
        "hearing_at": "en",
        "last_event": "Última actualización",
        "not_known": "Se desconoce",
        "none_scheduled": "Ninguna programada",
        "offender_not_found_title": "No se encontró al recluso",
        "offender_not_found": "No encontramos a ningún recluso con ese número de identificación.",
        "back_to_search": "Volver a la búsqueda",
        "public_record": "Esta información proviene del registro público. Un cambio puede tardar unos minutos "
                         "en aparecer.",
        "data_as_of": "Datos de esta fuente al {time}.",
        "data_as_of_source": "Datos de {source} al {time}.",
        "data_stale": "No hemos recibido actualizaciones de esta fuente desde entonces, así que esta situación "
                      "puede no estar al día.",
        "status.in_custody": "Bajo custodia",
        "status.released": "En libertad",
        "status.escaped": "Fugado",
        "status.on_supervision": "Bajo supervisión",
        "status.absconded": "Prófugo de la supervisión",
        "status.discharged": "Supervisión concluida",
        "status.deceased": "Fallecido",
        "status.unknown": "Se desconoce",
        "footer": "Si está en peligro, llame al 911.",
    },
}

LANGUAGES = tuple(STRINGS)


def _merge_parts() -> None:
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not info.name.startswith("words_"):
            continue
        words = importlib.import_module(f"{package}.{info.name}").WORDS
        for lang, table in words.items():
            if twice := set(table) & set(STRINGS[lang]):
                raise RuntimeError(f"{info.name} reuses the keys {sorted(twice)}")
            STRINGS[lang].update(table)


_merge_parts()


def strings(language: str) -> dict[str, str]:
    return STRINGS.get(language, STRINGS[DEFAULT])
