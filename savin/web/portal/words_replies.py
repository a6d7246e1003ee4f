"""The words of the pages an email's unsubscribe link opens, and of the page any email link that no
longer works opens (an unsubscribe or a confirm link)."""

WORDS = {
    "en": {
        "reply_unsubscribe_title": "Stop getting notices by email",
        "reply_unsubscribe_intro": "We will stop sending victim notification emails to the address this link "
                                   "was sent to.",
        "reply_unsubscribe_others": "Notices by text message or phone call do not change.",
        "reply_unsubscribe_button": "Stop email notices",
        "reply_unsubscribed_title": "You will get no more notices by email",
        "reply_unsubscribed_body": "We have stopped sending victim notification emails to this address. "
                                   "Notices by text message or phone call do not change.",
        "reply_manage_before": "To get emails again or to change your registration,",
        "reply_manage_link": "manage your registration",
        "reply_manage_after": "with your registration ID and PIN.",
        "reply_call": "To talk with someone, call the Office of Victim Services free at",
        "reply_link_expired_title": "This link no longer works",
        "reply_link_expired_body": "The link may have expired, or it was not copied in full.",
        "reply_link_expired_manage_before": "To stop notices by email,",
    },
    "es": {
        "reply_unsubscribe_title": "Dejar de recibir avisos por correo electrónico",
        "reply_unsubscribe_intro": "Dejaremos de enviar avisos de notificación a víctimas a la dirección de "
                                   "correo a la que se envió este enlace.",
        "reply_unsubscribe_others": "Los avisos por mensaje de texto o por llamada no cambian.",
        "reply_unsubscribe_button": "Dejar de recibir avisos por correo",
        "reply_unsubscribed_title": "Ya no recibirá avisos por correo electrónico",
        "reply_unsubscribed_body": "Dejamos de enviar avisos de notificación a víctimas a esta dirección de "
                                   "correo. Los avisos por mensaje de texto o por llamada no cambian.",
        "reply_manage_before": "Para volver a recibir correos o para cambiar su inscripción,",
        "reply_manage_link": "gestione su inscripción",
        "reply_manage_after": "con su número de inscripción y su PIN.",
        "reply_call": "Para hablar con alguien, llame gratis a la Oficina de Servicios a Víctimas al",
        "reply_link_expired_title": "Este enlace ya no funciona",
        "reply_link_expired_body": "Es posible que el enlace haya vencido o que no se haya copiado completo.",
        "reply_link_expired_manage_before": "Para dejar de recibir avisos por correo electrónico,",
    },
}
