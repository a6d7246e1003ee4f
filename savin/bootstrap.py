"""Builds the real collaborators from settings. The only place that reads Settings
for adapters; everything else receives plain values.

It also holds the start-up checks that need both worlds: which settings still
hold the development defaults, and which settings a provider's refusal points at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from savin.domain.links import derive_key
from savin.notifiers.base import ConfigurationFault, DeliveryError, Notifier
from savin.notifiers.dispatcher import Dispatcher
from savin.notifiers.pacing import Pacer, Pacing
from savin.rendering import LinkMaker, Renderer
from savin.sealing import Sealer
from savin.settings import PREFIX, Settings
from savin.streams.calls import CallBook
from savin.topics import Topics

__all__ = [
    "StartupError", "build_sealer", "build_notifiers", "build_links", "build_dispatcher", "build_app",
    "build_call_book", "web_base", "quiet_third_party_logs",
    "development_defaults", "check_settings", "check_providers", "setting_names",
]

log = logging.getLogger("savin.bootstrap")


class StartupError(RuntimeError):
    """The worker must not start; the message is one line naming the settings at fault."""


def build_sealer(settings: Settings) -> Sealer:
    return Sealer(settings.data_keys)


def _twilio(settings: Settings, sealer: Sealer) -> Notifier:
    from savin.notifiers.twilio_sms import TwilioSMS

    return TwilioSMS(
        sealer=sealer,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=None if settings.twilio_messaging_service_sid else settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        status_callback=settings.twilio_status_callback or None,
        base_url=settings.twilio_base_url,
        timeout=settings.twilio_timeout,
    )


def web_base(settings: Settings) -> str:
    """The address of ``savin web`` as victims and Twilio reach it: SAVIN_PUBLIC_URL, else the portal's own."""
    return (settings.public_url or f"http://{settings.portal_host}:{settings.portal_port}").rstrip("/")


def build_call_book(settings: Settings) -> CallBook:
    return CallBook(settings.kafka_bootstrap, Topics(settings).calls, settings.partitions)


def _twilio_voice(settings: Settings, sealer: Sealer) -> Notifier | None:
    """Calls, when the account has a caller ID for them (SAVIN_TWILIO_VOICE_FROM)."""
    if not settings.twilio_voice_from:
        return None
    from savin.notifiers.twilio_voice import TwilioVoice

    return TwilioVoice(
        sealer=sealer,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=settings.twilio_voice_from,
        calls=build_call_book(settings),
        link_key=derive_key(settings.web_secret.get_secret_value(), "links"),
        web_base=web_base(settings),
        pin_required=settings.voice_pin,
        machine_detection=settings.voice_machine_detection,
        base_url=settings.twilio_base_url,
        timeout=settings.twilio_timeout,
    )


def _smtp(settings: Settings, sealer: Sealer) -> Notifier:
    from savin.notifiers.smtp_email import SmtpEmail

    return SmtpEmail(
        sealer=sealer,
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        verify_tls=settings.smtp_verify_tls,
        timeout=settings.smtp_timeout,
        from_address=settings.email_from,
        pool_size=settings.smtp_connections,
    )


#: Each provider savin can send through: how to build it (None: not configured), and
#: which setting holds each constructor argument a configuration fault can point at.
PROVIDERS: dict[str, tuple[Callable[[Settings, Sealer], Notifier | None], dict[str, str]]] = {
    "twilio": (_twilio, {"account_sid": "twilio_account_sid", "auth_token": "twilio_auth_token"}),
    "twilio-voice": (_twilio_voice, {"account_sid": "twilio_account_sid", "auth_token": "twilio_auth_token",
                                     "from_number": "twilio_voice_from", "web_base": "public_url"}),
    "smtp": (_smtp, {"username": "smtp_username", "password": "smtp_password"}),
}


def build_notifiers(settings: Settings, sealer: Sealer | None = None) -> list[Notifier]:
    """One notifier per configured provider; the dispatcher files each under the channel it declares."""
    sealer = sealer or build_sealer(settings)
    built = (build(settings, sealer) for build, _ in PROVIDERS.values())
    return [n for n in built if n is not None]


def build_links(settings: Settings) -> LinkMaker:
    """The links notice emails carry, to ``savin web`` (:func:`web_base`), signed with
    the key the web process reads them with."""
    return LinkMaker(web_base(settings), derive_key(settings.web_secret.get_secret_value(), "links"))


def build_pacing(settings: Settings) -> Pacing:
    """The rate limits of the texting sender, the caller ID and the mail relay (each worker owns its share)."""
    # Named in metrics by the messaging service, or by the last digits of savin's own number.
    sms_sender = settings.twilio_messaging_service_sid or f"from-{(settings.twilio_from or '')[-4:]}"
    return Pacing([Pacer("sms", sms_sender, settings.sms_per_second),
                   Pacer("voice", f"from-{(settings.twilio_voice_from or '')[-4:]}", settings.twilio_calls_per_second),
                   Pacer("email", settings.smtp_host, settings.email_per_second)])


def build_dispatcher(settings: Settings, sealer: Sealer | None = None) -> Dispatcher:
    return Dispatcher(Renderer(), build_notifiers(settings, sealer), links=build_links(settings),
                      pacing=build_pacing(settings))


def quiet_third_party_logs() -> None:
    # The twilio SDK logs request parameters (numbers, bodies) at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("aiosmtplib").setLevel(logging.WARNING)
    # Kafka client chatter (every request and response) drowns savin's own debug lines.
    logging.getLogger("aiokafka").setLevel(logging.INFO)


def build_app(settings: Settings, dispatcher: Dispatcher | None = None):
    from savin.streams.worker import create_app

    quiet_third_party_logs()
    return create_app(settings, dispatcher or build_dispatcher(settings))


# ---- start-up checks ------------------------------------------------------------------------


def _env(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def setting_names(provider: str, fault: ConfigurationFault) -> list[str]:
    """The ``SAVIN_*`` variables a provider's configuration fault points at."""
    fields = PROVIDERS.get(provider, (None, {}))[1]
    return [_env(fields[f]) for f in fault.fields if f in fields]


def development_defaults(settings: Settings) -> list[str]:
    """The provider settings still holding the built-in development values (the
    local fake Twilio's account, token and number; the local SMTP server)."""
    if "deliver" not in settings.stages:
        return []  # a worker that only matches talks to no provider
    defaults = Settings.model_fields
    found = [_env(name) for name in ("twilio_account_sid", "twilio_from")
             if getattr(settings, name) == defaults[name].default]
    if settings.twilio_auth_token.get_secret_value() == defaults["twilio_auth_token"].default.get_secret_value():
        found.insert(1, _env("twilio_auth_token"))
    if (settings.smtp_host, settings.smtp_port) == (defaults["smtp_host"].default, defaults["smtp_port"].default):
        found += [_env("smtp_host"), _env("smtp_port")]
    return found


def check_settings(settings: Settings) -> None:
    """Refuse the development provider defaults outside a development run."""
    if settings.development:
        return
    if found := development_defaults(settings):
        raise StartupError(
            f"{', '.join(found)} still hold the development defaults (the local fake Twilio and SMTP server); "
            f"set the real values, or {_env('development')}=true for a development run")


async def check_providers(notifiers: Iterable[Notifier]) -> list[str]:
    """Ask each provider whether it accepts savin's configuration.

    Raises :class:`StartupError` naming the settings of every provider that refuses;
    a provider that cannot be asked now (unreachable, timing out) does not stop the
    start, and is returned as a warning line.
    """
    notifiers = list(notifiers)
    refused: list[str] = []
    warnings: list[str] = []

    async def one(n: Notifier) -> None:
        try:
            await n.check(record=False)
        except ConfigurationFault as e:
            names = setting_names(n.provider, e) or [f"the {n.provider} settings"]
            refused.append(f"{n.provider} refused the configuration in {', '.join(names)} ({e})")
        except DeliveryError as e:
            warnings.append(f"{n.provider} could not be checked at start: {e}")
        finally:
            await n.close()

    await asyncio.gather(*(one(n) for n in notifiers))
    if refused:
        raise StartupError("; ".join(refused))
    return warnings
