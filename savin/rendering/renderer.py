"""Turn a validated event into the SMS or email a registrant receives.

Templates live in ``savin/templates/{language}/`` as
``{EVENT_TYPE}.{channel}.j2``. Each channel has one template class
(:class:`~savin.rendering.sms.SMSTemplate`,
:class:`~savin.rendering.email.EmailTemplate`) found by its channel name in
:data:`CHANNEL_TEMPLATES`; adding a channel is one such class. A template
name without a folder (``"base.email.j2"``) resolves next to the template
that names it.

Templates see ``event`` (the JSON-mode event), ``p`` (its payload),
``offender`` (the offender's name), ``office_phone`` (the Office of Victim
Services line), what their channel adds (``compact`` and ``ack_code`` for
SMS, ``part`` and ``links`` for email) and the filters of
:mod:`savin.rendering.filters`. Undefined names are errors (``StrictUndefined``).

A notice that waits for an acknowledgement (its job has an ``ack_code``)
says so: its SMS asks for a reply with the code, its email carries a link to
confirm (``links.acknowledge``). Without one a notice reads as it always did.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from savin.rendering.channel import ChannelTemplate, Environments, TemplateError
from savin.rendering.email import EmailTemplate, RenderedEmail
from savin.rendering.filters import FILTERS
from savin.rendering.links import EmailLinks
from savin.rendering.sms import RenderedSMS, SMSTemplate
from savin.rendering.voice import VoiceTemplate

__all__ = ["Renderer", "CHANNEL_TEMPLATES", "TEMPLATE_DIR", "OFFICE_PHONE"]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

#: A placeholder line for the Office of Victim Services; set the real one per deployment.
OFFICE_PHONE = "1-800-555-0199"

#: The template class of each channel, by channel name.
CHANNEL_TEMPLATES: dict[str, type[ChannelTemplate]] = {t.channel: t for t in (SMSTemplate, EmailTemplate,
                                                                              VoiceTemplate)}

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class Renderer:
    """Renders events into :class:`RenderedSMS` and :class:`RenderedEmail`.

    Compiled templates are kept per (event type, channel, language), so a
    render is a dictionary lookup and a template call.
    """

    def __init__(
        self,
        default_language: str = "en",
        template_dir: Path | None = None,
        *,
        office_phone: str = OFFICE_PHONE,
    ):
        self.default_language = default_language
        loader = jinja2.FileSystemLoader(Path(template_dir) if template_dir is not None else TEMPLATE_DIR)
        self._envs = Environments(
            text=_environment(loader, autoescape=False, office_phone=office_phone),
            html=_environment(loader, autoescape=True, office_phone=office_phone),
        )
        self._templates: dict[tuple[str, str, str], ChannelTemplate] = {}

    def render(self, event: dict[str, Any], channel: str, language: str, timezone: str,
               links: EmailLinks | None = None, ack_code: str | None = None) -> RenderedSMS | RenderedEmail:
        """Render ``event`` (a JSON-mode event dict) for ``channel`` ("sms" or
        "email"), a language (the default language when it has no template)
        and an IANA timezone. An email needs its ``links``; an SMS has none.
        ``ack_code`` is the code an SMS asks the registrant to reply with
        (None: the notice waits for no acknowledgement). A channel is given
        only what its template class ``uses``.

        Raises :class:`TemplateError` when there is no template or a template fails.
        """
        template = self.template(str(event.get("event_type")), channel, language)
        given = {"links": links, "ack_code": ack_code}
        return template.render(event, timezone, **{k: v for k in template.uses if (v := given.get(k)) is not None})

    def template(self, event_type: str, channel: str, language: str) -> ChannelTemplate:
        """The template class instance that renders ``event_type`` for ``channel``
        in ``language`` (or the default language when it has none)."""
        key = (event_type, channel, language)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._find(*key)
        return template

    def _find(self, event_type: str, channel: str, language: str) -> ChannelTemplate:
        kind = CHANNEL_TEMPLATES.get(channel)
        if kind is None:
            raise TemplateError(f"no templates for channel {channel!r} (event_type={event_type}, language={language})")
        candidates = [language] if _LANGUAGE.match(language) else []
        if self.default_language not in candidates:
            candidates.append(self.default_language)
        for lang in candidates:
            name = f"{lang}/{event_type}.{channel}.j2"
            try:
                return kind.load(self._envs, name, lang, event_type)
            except jinja2.TemplateNotFound:
                continue
            except jinja2.TemplateError as e:
                raise TemplateError(f"template {name} is broken: {e}") from e
        raise TemplateError(
            f"no template for event_type={event_type} channel={channel} language={language}"
            f" (default language {self.default_language})"
        )


class _Environment(jinja2.Environment):
    """Resolves a bare template name next to the template that names it."""

    def join_path(self, template: str, parent: str) -> str:
        if "/" in template or "/" not in parent:
            return template
        return parent.rsplit("/", 1)[0] + "/" + template


def _environment(loader: jinja2.BaseLoader, *, autoescape: bool, office_phone: str) -> jinja2.Environment:
    env = _Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals["office_phone"] = office_phone
    return env
