"""What a victim reads: one template class per channel (:mod:`.sms`,
:mod:`.email`) found by the :class:`Renderer`, the filters templates use
(:mod:`.filters`), and SMS segment counting (:mod:`.gsm`)."""

from savin.rendering.channel import ChannelTemplate, TemplateError
from savin.rendering.email import EmailTemplate, RenderedEmail
from savin.rendering.filters import format_date, format_datetime, format_money, label
from savin.rendering.links import EmailLinks, LinkMaker
from savin.rendering.renderer import CHANNEL_TEMPLATES, TEMPLATE_DIR, Renderer
from savin.rendering.sms import RenderedSMS, SMSTemplate

__all__ = [
    "RenderedSMS", "RenderedEmail", "EmailLinks", "LinkMaker", "TemplateError", "Renderer", "TEMPLATE_DIR",
    "ChannelTemplate", "SMSTemplate", "EmailTemplate", "CHANNEL_TEMPLATES",
    "format_datetime", "format_date", "format_money", "label",
]
