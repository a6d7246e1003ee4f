"""The words of the registration pages and of the pages that prove a phone
or an email address (``/register/...``, ``/verify/...``)."""

from __future__ import annotations

__all__ = ["WORDS"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "reg_link": "Register for notices about this person",
        "reg_caption": "Register for notices",
        "reg_back": "Back",
        "reg_continue": "Continue",
        "reg_optional": "(optional)",
        # The start page.
        "reg_start_title": "Get a text or an email when this person's status changes",
        "reg_start_about": "Notices about",
        "reg_start_intro": "We will send you a text message, an email, or both when this person is released, "
                           "escapes, is transferred, starts or leaves supervision, has a parole hearing set or "
                           "decided, or when restitution is ordered or paid.",
        "reg_start_urgent": "We send a release, an escape or an absconding from supervision at once, day or night.",
        "reg_start_before": "Before you start",
        "reg_start_need": "You need a mobile phone that can get text messages, an email address, or both.",
        "reg_start_pin": "You will choose a PIN of 4 to 8 digits. With the PIN and the registration ID we give "
                         "you, you can change or stop your notices at any time.",
        "reg_start_prove": "Before we send you anything else, we text a code to your phone and email a link to "
                           "your address, to check that they are yours.",
        "reg_start_private": "The person you register about is not told that you registered.",
        "reg_start_time": "It takes about 5 minutes.",
        "reg_start_button": "Start now",
        # The questions.
        "reg_phone_title": "What mobile phone number should we text?",
        "reg_phone_hint": "For example, 573 555 0123, or +44 7700 900123 for a number outside the US. Leave this "
                          "blank to get notices by email only.",
        "reg_phone_invalid": "Enter a mobile phone number like 573 555 0123, or +44 7700 900123 for a number "
                             "outside the US",
        "reg_phone_needed": "Enter a mobile phone number: we need a phone number or an email address to send "
                            "notices to",
        "reg_email_title": "What email address should we send notices to?",
        "reg_email_hint": "Leave this blank to get notices by text message only.",
        "reg_email_invalid": "Enter an email address in the correct format, like name@example.com",
        "reg_email_needed": "Enter an email address: we need a phone number or an email address to send "
                            "notices to",
        "reg_language_title": "Which language should your notices be in?",
        "reg_language_invalid": "Select the language for your notices",
        "reg_notices_title": "Which notices do you want?",
        "reg_notices_hint": "Select all that apply. If a notice we sent you was wrong, we always send you the "
                            "correction.",
        "reg_notices_none": "Select at least one kind of notice",
        "reg_notices_all": "All notices",
        "reg_group_custody": "Custody",
        "reg_group_custody_hint": "Release, a release date set, escape, recapture, transfer or death",
        "reg_group_supervision": "Supervision",
        "reg_group_supervision_hint": "Probation or parole starting, absconding, revoked or ended",
        "reg_group_parole_board": "Parole hearings",
        "reg_group_parole_board_hint": "A hearing set, moved or cancelled, and the parole board's decision",
        "reg_group_clemency": "Clemency",
        "reg_group_clemency_hint": "A sentence commuted, or a pardon",
        "reg_group_restitution": "Restitution",
        "reg_group_restitution_hint": "Restitution ordered, and payments made",
        "reg_timezone_title": "Which time zone are you in?",
        "reg_timezone_hint": "Your notices show dates and times in this time zone.",
        "reg_timezone_invalid": "Select your time zone from the list",
        "reg_tz_America/New_York": "Eastern (New York, Detroit)",
        "reg_tz_America/Chicago": "Central (Chicago, St. Louis)",
        "reg_tz_America/Denver": "Mountain (Denver, Boise)",
        "reg_tz_America/Phoenix": "Arizona (no daylight saving)",
        "reg_tz_America/Los_Angeles": "Pacific (Los Angeles, Seattle)",
        "reg_tz_America/Anchorage": "Alaska (Anchorage)",
        "reg_tz_Pacific/Honolulu": "Hawaii (Honolulu)",
        "reg_tz_America/Puerto_Rico": "Atlantic (Puerto Rico)",
        "reg_tz_Pacific/Guam": "Chamorro (Guam)",
        "reg_tz_Pacific/Pago_Pago": "Samoa (American Samoa)",
        "reg_name_title": "What is your name?",
        "reg_name_hint": "You can leave this blank. Only Office of Victim Services staff see it, if you call them.",
        "reg_name_too_long": "Name must be 200 characters or fewer",
        "reg_pin_title": "Choose a PIN",
        "reg_pin_hint": "Use 4 to 8 digits. You need your PIN and your registration ID to change or stop your "
                        "notices. Do not use the PIN of a bank card.",
        "reg_pin_label": "PIN",
        "reg_pin_again_label": "Enter the PIN again",
        "reg_pin_invalid": "Enter a PIN of 4 to 8 digits, using numbers only",
        "reg_pin_mismatch": "The PINs do not match: enter the same PIN twice",
        # Check your answers.
        "reg_check_title": "Check your answers before you register",
        "reg_check_offender": "Notices about",
        "reg_check_phone": "Mobile phone",
        "reg_check_email": "Email address",
        "reg_check_language": "Language of notices",
        "reg_check_notices": "Notices",
        "reg_check_timezone": "Time zone",
        "reg_check_name": "Your name",
        "reg_check_pin": "PIN",
        "reg_not_given": "Not given",
        "reg_pin_hidden": "Chosen (not shown)",
        "reg_change": "Change",
        "reg_check_send_title": "Now send your registration",
        "reg_check_send": "When you register, we text a code to your phone and email a link to your address. We "
                          "send them no notices until you confirm that they are yours.",
        "reg_submit": "Register",
        # Done.
        "reg_done_title": "Registration complete",
        "reg_done_id": "Your registration ID is",
        "reg_done_keep": "Write down your registration ID. You need it and your PIN to change or stop your "
                         "notices.",
        "reg_done_next": "What happens next",
        "reg_done_phone": "We have sent a text message with a 6-digit code to your mobile phone. Enter the code "
                          "within 10 minutes to start getting notices by text.",
        "reg_done_phone_button": "Enter the code",
        "reg_done_email": "We have sent you an email with a link. Open the link within 24 hours to start getting "
                          "notices by email.",
        "reg_done_unconfirmed": "We send nothing else to a phone or an email address until you confirm it.",
        "reg_done_status": "See this person's status",
        # When something has gone.
        "reg_expired_title": "Your answers have expired",
        "reg_expired_body": "We keep your answers for 1 hour and then delete them, to protect your information. "
                            "Search for the person again and start again from their status page.",
        "reg_problem_title": "Sorry, there is a problem with the service",
        "reg_problem_body": "We could not save your registration. Your answers are kept for 1 hour: try again in "
                            "a few minutes.",
        "reg_problem_retry": "Back to check your answers",
        # Proving a phone.
        "reg_code_title": "Enter the code we sent to your phone",
        "reg_code_label": "Code",
        "reg_code_hint": "The code is 6 digits, for example 123456. It works for 10 minutes.",
        "reg_code_button": "Confirm my phone number",
        "reg_code_format": "Enter the 6-digit code from the text message",
        "reg_code_wrong": "The code is not right: check the text message and try again",
        "reg_code_expired": "This code has expired or was tried too many times: ask for a new code",
        "reg_code_new_title": "Not got a code?",
        "reg_code_new_body": "Text messages can take a few minutes to arrive.",
        "reg_code_new_button": "Send a new code",
        "reg_code_sent_title": "New code",
        "reg_code_sent": "If your phone can get text messages, a new code is on its way. It works for 10 minutes. "
                         "If you asked for too many codes, wait an hour and try again.",
        "reg_code_done_title": "Phone number confirmed",
        "reg_code_done_body": "We will text your notices to this phone.",
        "reg_unknown_title": "We cannot tell which registration this is",
        "reg_unknown_body": "Your session has ended. To confirm your phone, sign in to manage your notices with "
                            "your registration ID and PIN.",
        "reg_manage_link": "Manage your notices",
        # Proving an email address.
        "reg_link_title": "Confirm your email address",
        "reg_link_body": "Select the button to confirm that this email address is yours and start getting notices "
                         "by email.",
        "reg_link_button": "Confirm my email address",
        "reg_link_done_title": "Email address confirmed",
        "reg_link_done_body": "We will send your notices to this email address.",
        "reg_link_expired_title": "This link has expired or was already used",
        "reg_link_expired_body": "Ask for a new link: sign in to manage your notices with your registration ID "
                                 "and PIN.",
    },
    "es": {
        "reg_link": "Registrarse para recibir avisos sobre esta persona",
        "reg_caption": "Registrarse para recibir avisos",
        "reg_back": "Atrás",
        "reg_continue": "Continuar",
        "reg_optional": "(opcional)",
        "reg_start_title": "Reciba un mensaje de texto o un correo cuando cambie la situación de esta persona",
        "reg_start_about": "Avisos sobre",
        "reg_start_intro": "Le enviaremos un mensaje de texto, un correo electrónico o ambos cuando esta persona "
                           "salga en libertad, se fugue, sea trasladada, empiece o termine una supervisión, tenga "
                           "una audiencia de libertad condicional programada o resuelta, o cuando se ordene o se "
                           "pague una restitución.",
        "reg_start_urgent": "Una salida en libertad, una fuga o una evasión de la supervisión se la avisamos de "
                            "inmediato, de día o de noche.",
        "reg_start_before": "Antes de empezar",
        "reg_start_need": "Necesita un teléfono celular que reciba mensajes de texto, una dirección de correo "
                          "electrónico, o ambos.",
        "reg_start_pin": "Elegirá un PIN de 4 a 8 dígitos. Con el PIN y el número de registro que le daremos, "
                         "podrá cambiar o cancelar sus avisos cuando quiera.",
        "reg_start_prove": "Antes de enviarle cualquier otra cosa, le mandamos un código a su teléfono y un enlace "
                           "a su correo para comprobar que son suyos.",
        "reg_start_private": "A la persona sobre la que se registra no se le informa de su registro.",
        "reg_start_time": "Tarda unos 5 minutos.",
        "reg_start_button": "Empezar ahora",
        "reg_phone_title": "¿A qué número de celular le enviamos los mensajes de texto?",
        "reg_phone_hint": "Por ejemplo, 573 555 0123, o +44 7700 900123 si el número es de fuera de los EE. UU. "
                          "Déjelo en blanco para recibir los avisos solo por correo electrónico.",
        "reg_phone_invalid": "Escriba un número de celular como 573 555 0123, o +44 7700 900123 si es de fuera de "
                             "los EE. UU.",
        "reg_phone_needed": "Escriba un número de celular: necesitamos un número de teléfono o un correo "
                            "electrónico al que enviar los avisos",
        "reg_email_title": "¿A qué correo electrónico le enviamos los avisos?",
        "reg_email_hint": "Déjelo en blanco para recibir los avisos solo por mensaje de texto.",
        "reg_email_invalid": "Escriba una dirección de correo electrónico válida, como nombre@ejemplo.com",
        "reg_email_needed": "Escriba un correo electrónico: necesitamos un número de teléfono o un correo "
                            "electrónico al que enviar los avisos",
        "reg_language_title": "¿En qué idioma quiere recibir los avisos?",
        "reg_language_invalid": "Elija el idioma de sus avisos",
        "reg_notices_title": "¿Qué avisos quiere recibir?",
        "reg_notices_hint": "Marque todos los que correspondan. Si un aviso que le enviamos tenía un error, siempre "
                            "le enviamos la corrección.",
        "reg_notices_none": "Marque al menos un tipo de aviso",
        "reg_notices_all": "Todos los avisos",
        "reg_group_custody": "Custodia",
        "reg_group_custody_hint": "Salida en libertad, fecha de salida fijada, fuga, recaptura, traslado o "
                                  "fallecimiento",
        "reg_group_supervision": "Supervisión",
        "reg_group_supervision_hint": "Inicio de la libertad condicional o vigilada, evasión, revocación o fin",
        "reg_group_parole_board": "Audiencias de libertad condicional",
        "reg_group_parole_board_hint": "Una audiencia programada, cambiada o cancelada, y la decisión de la junta",
        "reg_group_clemency": "Clemencia",
        "reg_group_clemency_hint": "Una conmutación de la pena o un indulto",
        "reg_group_restitution": "Restitución",
        "reg_group_restitution_hint": "Restitución ordenada y pagos realizados",
        "reg_timezone_title": "¿En qué zona horaria está?",
        "reg_timezone_hint": "Sus avisos muestran las fechas y horas en esta zona horaria.",
        "reg_timezone_invalid": "Elija su zona horaria de la lista",
        "reg_tz_America/New_York": "Este (Nueva York, Detroit)",
        "reg_tz_America/Chicago": "Centro (Chicago, San Luis)",
        "reg_tz_America/Denver": "Montaña (Denver, Boise)",
        "reg_tz_America/Phoenix": "Arizona (sin cambio de hora)",
        "reg_tz_America/Los_Angeles": "Pacífico (Los Ángeles, Seattle)",
        "reg_tz_America/Anchorage": "Alaska (Anchorage)",
        "reg_tz_Pacific/Honolulu": "Hawái (Honolulu)",
        "reg_tz_America/Puerto_Rico": "Atlántico (Puerto Rico)",
        "reg_tz_Pacific/Guam": "Chamorro (Guam)",
        "reg_tz_Pacific/Pago_Pago": "Samoa (Samoa Americana)",
        "reg_name_title": "¿Cómo se llama?",
        "reg_name_hint": "Puede dejarlo en blanco. Solo lo ve el personal de la Oficina de Servicios a Víctimas, "
                         "si usted los llama.",
        "reg_name_too_long": "El nombre debe tener 200 caracteres o menos",
        "reg_pin_title": "Elija un PIN",
        "reg_pin_hint": "Use de 4 a 8 dígitos. Necesita su PIN y su número de registro para cambiar o cancelar sus "
                        "avisos. No use el PIN de una tarjeta bancaria.",
        "reg_pin_label": "PIN",
        "reg_pin_again_label": "Escriba el PIN otra vez",
        "reg_pin_invalid": "Escriba un PIN de 4 a 8 dígitos, solo con números",
        "reg_pin_mismatch": "Los PIN no coinciden: escriba el mismo PIN dos veces",
        "reg_check_title": "Revise sus respuestas antes de registrarse",
        "reg_check_offender": "Avisos sobre",
        "reg_check_phone": "Teléfono celular",
        "reg_check_email": "Correo electrónico",
        "reg_check_language": "Idioma de los avisos",
        "reg_check_notices": "Avisos",
        "reg_check_timezone": "Zona horaria",
        "reg_check_name": "Su nombre",
        "reg_check_pin": "PIN",
        "reg_not_given": "No lo dio",
        "reg_pin_hidden": "Elegido (no se muestra)",
        "reg_change": "Cambiar",
        "reg_check_send_title": "Envíe ahora su registro",
        "reg_check_send": "Cuando se registre, le mandaremos un código a su teléfono y un enlace a su correo. No "
                          "les enviamos avisos hasta que confirme que son suyos.",
        "reg_submit": "Registrarse",
        "reg_done_title": "Registro completado",
        "reg_done_id": "Su número de registro es",
        "reg_done_keep": "Anote su número de registro. Lo necesita, junto con su PIN, para cambiar o cancelar sus "
                         "avisos.",
        "reg_done_next": "Qué pasa ahora",
        "reg_done_phone": "Le enviamos un mensaje de texto con un código de 6 dígitos a su celular. Escriba el "
                          "código en los próximos 10 minutos para empezar a recibir avisos por mensaje de texto.",
        "reg_done_phone_button": "Escribir el código",
        "reg_done_email": "Le enviamos un correo electrónico con un enlace. Ábralo en las próximas 24 horas para "
                          "empezar a recibir avisos por correo.",
        "reg_done_unconfirmed": "No enviamos nada más a un teléfono ni a un correo hasta que usted lo confirme.",
        "reg_done_status": "Ver la situación de esta persona",
        "reg_expired_title": "Sus respuestas han caducado",
        "reg_expired_body": "Guardamos sus respuestas durante 1 hora y luego las borramos, para proteger su "
                            "información. Busque de nuevo a la persona y vuelva a empezar desde su página.",
        "reg_problem_title": "Lo sentimos, hay un problema con el servicio",
        "reg_problem_body": "No pudimos guardar su registro. Sus respuestas se guardan durante 1 hora: inténtelo "
                            "de nuevo en unos minutos.",
        "reg_problem_retry": "Volver a revisar sus respuestas",
        "reg_code_title": "Escriba el código que le enviamos al teléfono",
        "reg_code_label": "Código",
        "reg_code_hint": "El código tiene 6 dígitos, por ejemplo 123456. Vale durante 10 minutos.",
        "reg_code_button": "Confirmar mi número de teléfono",
        "reg_code_format": "Escriba el código de 6 dígitos del mensaje de texto",
        "reg_code_wrong": "El código no es correcto: revise el mensaje de texto y vuelva a intentarlo",
        "reg_code_expired": "Este código ha vencido o se intentó demasiadas veces: pida un código nuevo",
        "reg_code_new_title": "¿No le llegó el código?",
        "reg_code_new_body": "Los mensajes de texto pueden tardar unos minutos en llegar.",
        "reg_code_new_button": "Enviar un código nuevo",
        "reg_code_sent_title": "Código nuevo",
        "reg_code_sent": "Si su teléfono recibe mensajes de texto, le llegará un código nuevo. Vale durante 10 "
                         "minutos. Si pidió demasiados códigos, espere una hora y vuelva a intentarlo.",
        "reg_code_done_title": "Número de teléfono confirmado",
        "reg_code_done_body": "Le enviaremos sus avisos por mensaje de texto a este teléfono.",
        "reg_unknown_title": "No sabemos de qué registro se trata",
        "reg_unknown_body": "Su sesión terminó. Para confirmar su teléfono, entre a administrar sus avisos con su "
                            "número de registro y su PIN.",
        "reg_manage_link": "Administrar sus avisos",
        "reg_link_title": "Confirme su correo electrónico",
        "reg_link_body": "Pulse el botón para confirmar que esta dirección de correo es suya y empezar a recibir "
                         "avisos por correo.",
        "reg_link_button": "Confirmar mi correo electrónico",
        "reg_link_done_title": "Correo electrónico confirmado",
        "reg_link_done_body": "Le enviaremos sus avisos a esta dirección de correo.",
        "reg_link_expired_title": "Este enlace ha vencido o ya se usó",
        "reg_link_expired_body": "Pida un enlace nuevo: entre a administrar sus avisos con su número de registro y "
                                 "su PIN.",
    },
}
