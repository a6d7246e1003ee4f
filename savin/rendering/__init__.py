"""What a victim reads: templates rendered per channel and language, and SMS
segment counting (:mod:`savin.rendering.gsm`)."""

from savin.rendering.renderer import (
    TEMPLATE_DIR,
    RenderedEmail,
    RenderedSMS,
    Renderer,
    TemplateError,
    format_date,
    format_datetime,
    format_money,
    label,
)

__all__ = [
    "RenderedSMS", "RenderedEmail", "TemplateError", "Renderer", "TEMPLATE_DIR",
    "format_datetime", "format_date", "format_money", "label",
]
