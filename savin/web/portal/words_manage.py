"""The words of the pages where a registrant manages a registration
(``/manage/...``): signing in, the overview, one page a change, cancelling.

The names of the kinds of notices and of the time zones are the registration
pages' (``reg_group_*``, ``reg_tz_*``), so a choice reads the same on both."""

from __future__ import annotations

__all__ = ["WORDS"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "manage_caption": "Manage your notices",
        "manage_save": "Save",
        # Signing in.
        "manage_sign_in_title": "Sign in to manage your notices",
        "manage_sign_in_intro": "You can change how we contact you, which notices you get and when, or stop "
                                "your notices.",
        "manage_id_label": "Registration ID",
        "manage_id_hint": "We gave it to you when you registered, for example R-1001",
        "manage_pin_label": "PIN",
        "manage_pin_hint": "The 4 to 8 digits you chose when you registered",
        "manage_sign_in_button": "Sign in",
        "manage_id_missing": "Enter your registration ID",
        "manage_pin_missing": "Enter your PIN",
        "manage_pin_format": "Enter your PIN using 4 to 8 digits",
        "manage_refused": "We could not sign you in. Check your registration ID and PIN and try again. After 10 "
                          "tries that are not right, signing in stops for 30 minutes.",
        "manage_forgot_title": "If you have forgotten your PIN or registration ID",
        "manage_forgot": "Call the Office of Victim Services at {phone}. They can check who you are and help you.",
        "manage_register_instead": "To get notices about someone, find them by name or offender ID and register "
                                   "from their status page.",
        # The overview.
        "manage_overview_title": "Your notices",
        "manage_registration_id": "Registration ID",
        "manage_about": "Notices about",
        "manage_phone": "Mobile phone",
        "manage_email": "Email address",
        "manage_voice": "Phone for calls",
        "manage_confirmed": "Confirmed",
        "manage_pending": "Not confirmed yet",
        "manage_pending_hint": "We send it nothing but its confirmation until you confirm it.",
        "manage_stopped": "Stopped",
        "manage_stopped_hint": "You asked us to stop sending notices here.",
        "manage_none": "None",
        "manage_language": "Language of notices",
        "manage_notices": "Notices",
        "manage_notices_all": "All notices",
        "manage_notices_some": "some of them",
        "manage_quiet": "Quiet hours",
        "manage_quiet_range": "{start} to {end}",
        "manage_quiet_usual": "(the usual hours)",
        "manage_timezone": "Time zone",
        "manage_change": "Change",
        "manage_add": "Add",
        "manage_remove": "Remove",
        "manage_enter_code": "Enter the code",
        "manage_new_link": "Send a new confirmation link",
        "manage_stop_title": "Stop your notices",
        "manage_stop_link": "Stop all notices and cancel this registration",
        "manage_sign_out": "Sign out",
        "manage_session_note": "To protect your information, we sign you out after 15 minutes without activity.",
        # What a change says when it is saved.
        "manage_banner_title": "Success",
        "manage_banner_important": "Important",
        "manage_saved_language": "The language of your notices has changed.",
        "manage_saved_notices": "The notices you get have changed.",
        "manage_saved_quiet-hours": "Your quiet hours have changed.",
        "manage_saved_timezone": "Your time zone has changed.",
        "manage_saved_phone-confirmed": "Your mobile phone number is confirmed. We will text your notices to it.",
        "manage_saved_phone-removed": "Your mobile phone number is removed. We will not text you any more notices.",
        "manage_saved_email-removed": "Your email address is removed. We will not email you any more notices.",
        "manage_saved_email": "We have emailed a link to your new address. Open it within 24 hours to start "
                              "getting notices by email.",
        "manage_saved_email-limited": "Your new email address is saved, but we have sent too many links to it "
                                      "in the last hour. Wait an hour, then ask for a new link.",
        "manage_saved_email-failed": "Your new email address is saved, but we could not send a link to it. "
                                     "Check the address, or ask for a new link later.",
        "manage_saved_link": "We have emailed you a new link. Open it within 24 hours to start getting "
                             "notices by email.",
        "manage_saved_link-limited": "We have sent too many links to this address in the last hour. Wait an "
                                     "hour and try again.",
        "manage_saved_acknowledged": "Thank you. We have recorded that you received the notice.",
        "manage_saved_link-failed": "We could not send a link to this address. Check the address, or try again "
                                    "later.",
        # The questions.
        "manage_language_title": "Which language should your notices be in?",
        "manage_language_missing": "Select the language for your notices",
        "manage_notices_title": "Which notices do you want?",
        "manage_notices_hint": "Select all that apply. If a notice we sent you was wrong, we always send you the "
                               "correction.",
        "manage_notices_missing": "Select at least one kind of notice",
        "manage_quiet_title": "When should routine notices wait?",
        "manage_quiet_hint": "During these hours we hold routine notices, such as a transfer or a hearing date, "
                             "and send them when the hours end. Urgent notices, such as a release or an escape, "
                             "come at once, day or night.",
        "manage_quiet_clock": "Use the 24-hour clock, in your time zone. For example, 21:00 for 9 pm.",
        "manage_quiet_start": "From",
        "manage_quiet_end": "Until",
        "manage_quiet_start_invalid": "Enter the time quiet hours start, like 21:00",
        "manage_quiet_end_invalid": "Enter the time quiet hours end, like 08:00",
        "manage_quiet_same": "Quiet hours must start and end at different times",
        "manage_timezone_title": "Which time zone are you in?",
        "manage_timezone_hint": "The times in your notices, and your quiet hours, follow this time zone.",
        "manage_timezone_missing": "Select your time zone",
        "manage_phone_title": "What is your new mobile phone number?",
        "manage_phone_hint": "For example, 573 555 0123, or +44 7700 900123 for a number outside the US. We "
                             "will text it a code, to check that it is yours.",
        "manage_phone_missing": "Enter a mobile phone number",
        "manage_phone_invalid": "Enter a mobile phone number like 573 555 0123, or +44 7700 900123 for a number "
                                "outside the US",
        "manage_email_title": "What is your new email address?",
        "manage_email_hint": "We will email it a link, to check that it is yours.",
        "manage_email_missing": "Enter an email address",
        "manage_email_invalid": "Enter an email address in the correct format, like name@example.com",
        "manage_new_contact_note": "Until you confirm the new one, we send your notices only to your other "
                                   "confirmed contacts.",
        # Removing a contact.
        "manage_remove_phone_title": "Remove your mobile phone number?",
        "manage_remove_email_title": "Remove your email address?",
        "manage_remove_phone_body": "We will stop texting your notices to {contact}.",
        "manage_remove_email_body": "We will stop emailing your notices to {contact}.",
        "manage_remove_phone_button": "Remove my phone number",
        "manage_remove_email_button": "Remove my email address",
        "manage_remove_only": "You cannot remove the only place we send your notices. Add another phone number "
                              "or email address first, or stop all notices.",
        "manage_keep": "No, keep it",
        # Proving a new phone.
        "manage_code_title": "Enter the code we sent to your phone",
        "manage_code_sent_to": "We texted a 6-digit code to {contact}. It works for 10 minutes.",
        "manage_code_hint": "For example, 123456",
        "manage_code_button": "Confirm my phone number",
        "manage_code_format": "Enter the 6-digit code from the text message",
        "manage_code_wrong": "The code is not right: check the text message and try again",
        "manage_code_expired": "This code has expired or was tried too many times: send a new code",
        "manage_code_again_title": "Not got a code?",
        "manage_code_again_body": "Text messages can take a few minutes to arrive.",
        "manage_code_again_button": "Send a new code",
        "manage_code_sent": "We have sent a new code. It works for 10 minutes.",
        "manage_code_limited": "We have sent too many codes to this number in the last hour. Wait an hour and "
                               "try again.",
        "manage_code_failed": "We could not send a code to this number. Check the number, or try again later.",
        # Cancelling and signing out.
        "manage_cancel_title": "Are you sure you want to stop all notices?",
        "manage_cancel_body": "We will cancel this registration and send you no more notices about {offender}, "
                              "by text or by email.",
        "manage_cancel_undo": "You cannot undo this. To get notices again, you will need to register again.",
        "manage_cancel_button": "Yes, stop all notices",
        "manage_cancel_keep": "No, keep my notices",
        "manage_cancelled_title": "Your notices have stopped",
        "manage_cancelled_body": "We have cancelled your registration. We will not send you any more notices "
                                 "about this person.",
        "manage_cancelled_again": "If you change your mind, you can register again from the person's status page.",
        "manage_signed_out_note": "You have been signed out.",
        "manage_find": "Find an offender's custody status",
        "manage_signed_out_title": "You have signed out",
        "manage_signed_out_body": "To change your notices again, sign in with your registration ID and PIN.",
        "manage_sign_in_again": "Sign in again",
    },
    "es": {
        "manage_caption": "Administrar sus avisos",
        "manage_save": "Guardar",
        "manage_sign_in_title": "Entre para administrar sus avisos",
        "manage_sign_in_intro": "Puede cambiar cómo nos comunicamos con usted, qué avisos recibe y cuándo, o "
                                "cancelar sus avisos.",
        "manage_id_label": "Número de registro",
        "manage_id_hint": "Se lo dimos cuando se registró, por ejemplo R-1001",
        "manage_pin_label": "PIN",
        "manage_pin_hint": "Los 4 a 8 dígitos que eligió cuando se registró",
        "manage_sign_in_button": "Entrar",
        "manage_id_missing": "Escriba su número de registro",
        "manage_pin_missing": "Escriba su PIN",
        "manage_pin_format": "Escriba su PIN de 4 a 8 dígitos",
        "manage_refused": "No pudimos dejarle entrar. Revise su número de registro y su PIN y vuelva a "
                          "intentarlo. Después de 10 intentos incorrectos, la entrada se detiene durante 30 "
                          "minutos.",
        "manage_forgot_title": "Si olvidó su PIN o su número de registro",
        "manage_forgot": "Llame a la Oficina de Servicios a Víctimas al {phone}. Pueden comprobar quién es usted "
                         "y ayudarle.",
        "manage_register_instead": "Para recibir avisos sobre alguien, búsquelo por nombre o por número de "
                                   "identificación y regístrese desde su página.",
        "manage_overview_title": "Sus avisos",
        "manage_registration_id": "Número de registro",
        "manage_about": "Avisos sobre",
        "manage_phone": "Teléfono celular",
        "manage_email": "Correo electrónico",
        "manage_voice": "Teléfono para llamadas",
        "manage_confirmed": "Confirmado",
        "manage_pending": "Sin confirmar",
        "manage_pending_hint": "No le enviamos nada más que su confirmación hasta que usted lo confirme.",
        "manage_stopped": "Detenido",
        "manage_stopped_hint": "Nos pidió que dejáramos de enviar avisos aquí.",
        "manage_none": "Ninguno",
        "manage_language": "Idioma de los avisos",
        "manage_notices": "Avisos",
        "manage_notices_all": "Todos los avisos",
        "manage_notices_some": "algunos",
        "manage_quiet": "Horas de descanso",
        "manage_quiet_range": "de {start} a {end}",
        "manage_quiet_usual": "(el horario habitual)",
        "manage_timezone": "Zona horaria",
        "manage_change": "Cambiar",
        "manage_add": "Agregar",
        "manage_remove": "Quitar",
        "manage_enter_code": "Escribir el código",
        "manage_new_link": "Enviar un enlace de confirmación nuevo",
        "manage_stop_title": "Cancelar sus avisos",
        "manage_stop_link": "Cancelar todos los avisos y este registro",
        "manage_sign_out": "Salir",
        "manage_session_note": "Para proteger su información, cerramos su sesión después de 15 minutos sin "
                               "actividad.",
        "manage_banner_title": "Listo",
        "manage_banner_important": "Importante",
        "manage_saved_language": "El idioma de sus avisos cambió.",
        "manage_saved_notices": "Los avisos que recibe cambiaron.",
        "manage_saved_quiet-hours": "Sus horas de descanso cambiaron.",
        "manage_saved_timezone": "Su zona horaria cambió.",
        "manage_saved_phone-confirmed": "Su número de celular está confirmado. Le enviaremos sus avisos por "
                                        "mensaje de texto.",
        "manage_saved_phone-removed": "Quitamos su número de celular. No le enviaremos más avisos por mensaje de "
                                      "texto.",
        "manage_saved_email-removed": "Quitamos su correo electrónico. No le enviaremos más avisos por correo.",
        "manage_saved_email": "Le enviamos un enlace a su nueva dirección. Ábralo en las próximas 24 horas para "
                              "empezar a recibir avisos por correo.",
        "manage_saved_email-limited": "Guardamos su nueva dirección de correo, pero ya le enviamos demasiados "
                                      "enlaces en la última hora. Espere una hora y pida un enlace nuevo.",
        "manage_saved_email-failed": "Guardamos su nueva dirección de correo, pero no pudimos enviarle un enlace. "
                                     "Revise la dirección o pida un enlace nuevo más tarde.",
        "manage_saved_link": "Le enviamos un enlace nuevo. Ábralo en las próximas 24 horas para empezar a "
                             "recibir avisos por correo.",
        "manage_saved_link-limited": "Ya enviamos demasiados enlaces a esta dirección en la última hora. Espere "
                                     "una hora y vuelva a intentarlo.",
        "manage_saved_acknowledged": "Gracias. Hemos anotado que recibió el aviso.",
        "manage_saved_link-failed": "No pudimos enviar un enlace a esta dirección. Revise la dirección o vuelva a "
                                    "intentarlo más tarde.",
        "manage_language_title": "¿En qué idioma quiere recibir los avisos?",
        "manage_language_missing": "Elija el idioma de sus avisos",
        "manage_notices_title": "¿Qué avisos quiere recibir?",
        "manage_notices_hint": "Marque todos los que correspondan. Si un aviso que le enviamos tenía un error, "
                               "siempre le enviamos la corrección.",
        "manage_notices_missing": "Marque al menos un tipo de aviso",
        "manage_quiet_title": "¿Cuándo deben esperar los avisos de rutina?",
        "manage_quiet_hint": "Durante estas horas guardamos los avisos de rutina, como un traslado o la fecha de "
                             "una audiencia, y se los enviamos cuando terminan. Los avisos urgentes, como una "
                             "salida en libertad o una fuga, llegan de inmediato, de día o de noche.",
        "manage_quiet_clock": "Use el reloj de 24 horas, en su zona horaria. Por ejemplo, 21:00 para las 9 de "
                              "la noche.",
        "manage_quiet_start": "Desde",
        "manage_quiet_end": "Hasta",
        "manage_quiet_start_invalid": "Escriba la hora en que empiezan las horas de descanso, como 21:00",
        "manage_quiet_end_invalid": "Escriba la hora en que terminan las horas de descanso, como 08:00",
        "manage_quiet_same": "Las horas de descanso deben empezar y terminar a horas distintas",
        "manage_timezone_title": "¿En qué zona horaria está?",
        "manage_timezone_hint": "Las horas de sus avisos y sus horas de descanso siguen esta zona horaria.",
        "manage_timezone_missing": "Elija su zona horaria",
        "manage_phone_title": "¿Cuál es su nuevo número de celular?",
        "manage_phone_hint": "Por ejemplo, 573 555 0123, o +44 7700 900123 si el número es de fuera de los "
                             "EE. UU. Le enviaremos un código para comprobar que es suyo.",
        "manage_phone_missing": "Escriba un número de celular",
        "manage_phone_invalid": "Escriba un número de celular como 573 555 0123, o +44 7700 900123 si es de fuera "
                                "de los EE. UU.",
        "manage_email_title": "¿Cuál es su nueva dirección de correo electrónico?",
        "manage_email_hint": "Le enviaremos un enlace para comprobar que es suya.",
        "manage_email_missing": "Escriba una dirección de correo electrónico",
        "manage_email_invalid": "Escriba una dirección de correo electrónico válida, como nombre@ejemplo.com",
        "manage_new_contact_note": "Hasta que confirme la nueva, le enviamos los avisos solo a sus otros "
                                   "contactos confirmados.",
        "manage_remove_phone_title": "¿Quitar su número de celular?",
        "manage_remove_email_title": "¿Quitar su correo electrónico?",
        "manage_remove_phone_body": "Dejaremos de enviar sus avisos por mensaje de texto al {contact}.",
        "manage_remove_email_body": "Dejaremos de enviar sus avisos por correo a {contact}.",
        "manage_remove_phone_button": "Quitar mi número de celular",
        "manage_remove_email_button": "Quitar mi correo electrónico",
        "manage_remove_only": "No puede quitar el único lugar al que enviamos sus avisos. Agregue antes otro "
                              "número de teléfono o correo electrónico, o cancele todos los avisos.",
        "manage_keep": "No, mantenerlo",
        "manage_code_title": "Escriba el código que le enviamos al teléfono",
        "manage_code_sent_to": "Enviamos un código de 6 dígitos al {contact}. Vale durante 10 minutos.",
        "manage_code_hint": "Por ejemplo, 123456",
        "manage_code_button": "Confirmar mi número de teléfono",
        "manage_code_format": "Escriba el código de 6 dígitos del mensaje de texto",
        "manage_code_wrong": "El código no es correcto: revise el mensaje de texto y vuelva a intentarlo",
        "manage_code_expired": "Este código ha vencido o se intentó demasiadas veces: pida un código nuevo",
        "manage_code_again_title": "¿No le llegó el código?",
        "manage_code_again_body": "Los mensajes de texto pueden tardar unos minutos en llegar.",
        "manage_code_again_button": "Enviar un código nuevo",
        "manage_code_sent": "Le enviamos un código nuevo. Vale durante 10 minutos.",
        "manage_code_limited": "Ya enviamos demasiados códigos a este número en la última hora. Espere una hora y "
                               "vuelva a intentarlo.",
        "manage_code_failed": "No pudimos enviar un código a este número. Revise el número o vuelva a intentarlo "
                              "más tarde.",
        "manage_cancel_title": "¿Seguro que quiere cancelar todos los avisos?",
        "manage_cancel_body": "Cancelaremos este registro y no le enviaremos más avisos sobre {offender}, ni por "
                              "mensaje de texto ni por correo.",
        "manage_cancel_undo": "No se puede deshacer. Para volver a recibir avisos, tendrá que registrarse de "
                              "nuevo.",
        "manage_cancel_button": "Sí, cancelar todos los avisos",
        "manage_cancel_keep": "No, mantener mis avisos",
        "manage_cancelled_title": "Sus avisos se cancelaron",
        "manage_cancelled_body": "Cancelamos su registro. No le enviaremos más avisos sobre esta persona.",
        "manage_cancelled_again": "Si cambia de opinión, puede registrarse de nuevo desde la página de la persona.",
        "manage_signed_out_note": "Cerramos su sesión.",
        "manage_find": "Consultar la situación de custodia de un recluso",
        "manage_signed_out_title": "Cerró su sesión",
        "manage_signed_out_body": "Para volver a cambiar sus avisos, entre con su número de registro y su PIN.",
        "manage_sign_in_again": "Entrar de nuevo",
    },
}
