"""Builds the real collaborators from settings. The only place that reads Settings
for adapters; everything else receives plain values."""

from __future__ import annotations

import logging

from savin.notifiers.dispatcher import Dispatcher
from savin.rendering import Renderer
from savin.sealing import Sealer
from savin.settings import Settings

__all__ = ["build_sealer", "build_dispatcher", "build_app", "quiet_third_party_logs"]


def build_sealer(settings: Settings) -> Sealer:
    return Sealer(settings.data_keys)


def build_dispatcher(settings: Settings, sealer: Sealer | None = None) -> Dispatcher:
    from savin.notifiers.smtp_email import SmtpEmail
    from savin.notifiers.twilio_sms import TwilioSMS

    sealer = sealer or build_sealer(settings)
    callback = None
    if settings.twilio_status_callback:
        callback = settings.twilio_status_callback
    sms = TwilioSMS(
        sealer=sealer,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=None if settings.twilio_messaging_service_sid else settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        status_callback=callback,
        base_url=settings.twilio_base_url,
        timeout=settings.twilio_timeout,
    )
    email = SmtpEmail(
        sealer=sealer,
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        verify_tls=settings.smtp_verify_tls,
        timeout=settings.smtp_timeout,
        from_address=settings.email_from,
    )
    return Dispatcher(Renderer(), {"sms": sms, "email": email})


def quiet_third_party_logs() -> None:
    # The twilio SDK logs request parameters (numbers, bodies) at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("aiosmtplib").setLevel(logging.WARNING)
    # Kafka client chatter (every request and response) drowns savin's own debug lines.
    logging.getLogger("aiokafka").setLevel(logging.INFO)


def build_app(settings: Settings):
    from savin.streams.worker import create_app

    quiet_third_party_logs()
    return create_app(settings, build_dispatcher(settings))
