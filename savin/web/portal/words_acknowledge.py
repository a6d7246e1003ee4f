"""The words of acknowledging a notice on the portal: the page an email's
confirm link opens, its thank-you page, and the notices waiting for a
confirmation on the manage overview.

``ack_kind_<EVENT_TYPE>`` names the notice of each event type, as its
email's subject does (any type can wait for a confirmation when
``SAVIN_ESCALATE_ROUTINE`` is on)."""

from __future__ import annotations

__all__ = ["WORDS"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "ack_title": "Confirm you received this notice",
        "ack_intro": "Let us know you have received our notice. We will then stop trying to reach you about it.",
        "ack_button": "I have received this notice",
        "ack_sent": "Sent {when}",
        "ack_done_title": "Thank you",
        "ack_done_body": "We have recorded that you received this notice. We will not try to reach you about it "
                         "again.",
        "ack_expired_manage_before": "To confirm you received a notice,",
        "ack_waiting_title": "Notices waiting for you to confirm",
        "ack_waiting_intro": "Let us know you have received each notice, so we stop trying to reach you "
                             "about it.",
        "ack_kind_RELEASED": "Release from custody",
        "ack_kind_RELEASE_SCHEDULED": "Upcoming release",
        "ack_kind_ESCAPED": "Escape from custody",
        "ack_kind_RECAPTURED": "Back in custody",
        "ack_kind_TRANSFERRED": "Facility transfer",
        "ack_kind_DECEASED": "Notice of death",
        "ack_kind_SUPERVISION_STARTED": "Supervision started",
        "ack_kind_ABSCONDED": "Missing from supervision",
        "ack_kind_SUPERVISION_REVOKED": "Supervision revoked",
        "ack_kind_SUPERVISION_DISCHARGED": "Supervision ended",
        "ack_kind_HEARING_SCHEDULED": "Parole hearing scheduled",
        "ack_kind_HEARING_RESCHEDULED": "Parole hearing rescheduled",
        "ack_kind_HEARING_CANCELLED": "Parole hearing cancelled",
        "ack_kind_HEARING_DECISION": "Parole hearing decision",
        "ack_kind_COMMUTATION": "Sentence commuted",
        "ack_kind_PARDON": "Pardon granted",
        "ack_kind_RESTITUTION_ORDERED": "Restitution ordered",
        "ack_kind_RESTITUTION_PAYMENT": "Restitution payment received",
        "ack_kind_EVENT_RETRACTED": "Correction of an earlier notice",
    },
    "es": {
        "ack_title": "Confirme que recibió este aviso",
        "ack_intro": "Díganos que recibió nuestro aviso. Así dejaremos de intentar comunicarnos con usted por "
                     "este motivo.",
        "ack_button": "He recibido este aviso",
        "ack_sent": "Enviado el {when}",
        "ack_done_title": "Gracias",
        "ack_done_body": "Hemos anotado que recibió este aviso. No volveremos a intentar comunicarnos con usted "
                         "por este motivo.",
        "ack_expired_manage_before": "Para confirmar que recibió un aviso,",
        "ack_waiting_title": "Avisos pendientes de su confirmación",
        "ack_waiting_intro": "Díganos que recibió cada uno de estos avisos, para que dejemos de intentar "
                             "comunicarnos con usted por ese motivo.",
        "ack_kind_RELEASED": "Salida en libertad",
        "ack_kind_RELEASE_SCHEDULED": "Salida en libertad prevista",
        "ack_kind_ESCAPED": "Fuga de la custodia",
        "ack_kind_RECAPTURED": "De nuevo bajo custodia",
        "ack_kind_TRANSFERRED": "Traslado de centro",
        "ack_kind_DECEASED": "Aviso de fallecimiento",
        "ack_kind_SUPERVISION_STARTED": "Inicio de la supervisión",
        "ack_kind_ABSCONDED": "Paradero desconocido",
        "ack_kind_SUPERVISION_REVOKED": "Supervisión revocada",
        "ack_kind_SUPERVISION_DISCHARGED": "Fin de la supervisión",
        "ack_kind_HEARING_SCHEDULED": "Audiencia de libertad condicional programada",
        "ack_kind_HEARING_RESCHEDULED": "Audiencia de libertad condicional reprogramada",
        "ack_kind_HEARING_CANCELLED": "Audiencia de libertad condicional cancelada",
        "ack_kind_HEARING_DECISION": "Decisión de la audiencia de libertad condicional",
        "ack_kind_COMMUTATION": "Condena conmutada",
        "ack_kind_PARDON": "Indulto concedido",
        "ack_kind_RESTITUTION_ORDERED": "Restitución ordenada",
        "ack_kind_RESTITUTION_PAYMENT": "Pago de restitución recibido",
        "ack_kind_EVENT_RETRACTED": "Corrección de un aviso anterior",
    },
}
