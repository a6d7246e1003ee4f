"""The email channel: a subject, a plain-text part and an HTML part.

An email template extends ``base.email.j2`` and fills ``subject`` and
``body``; the base lays out the three parts and renders the one named by the
``part`` variable. ``subject`` and ``text`` come from the environment without
autoescaping and ``html`` from the one with it, so a name such as
``<script>`` is escaped in the HTML part and left as written in the others.

Templates also see ``links`` (:class:`~savin.rendering.links.EmailLinks`):
the footer's links to stop email notices and to manage the registration.
An email cannot be rendered without them (``StrictUndefined``), so no notice
email goes out without a way to stop it. A notice that waits for an
acknowledgement has ``links.acknowledge`` too, the link that confirms it was
received; the base shows it under the notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from savin.rendering.channel import ChannelTemplate, Environments
from savin.rendering.filters import BLANK_LINES
from savin.rendering.links import EmailLinks

__all__ = ["RenderedEmail", "EmailTemplate"]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    #: The one-click unsubscribe URL for the ``List-Unsubscribe`` header (None: the email has none).
    unsubscribe: str | None = None


class EmailTemplate(ChannelTemplate):
    """An event type's email in one language."""

    channel = "email"
    uses = ("links",)

    def __init__(self, name: str, language: str, text: jinja2.Template, html: jinja2.Template):
        super().__init__(name, language)
        self.text_template = text
        self.html_template = html

    @classmethod
    def load(cls, envs: Environments, name: str, language: str, event_type: str) -> EmailTemplate:
        return cls(name, language, envs.text.get_template(name), envs.html.get_template(name))

    def render(self, event: dict[str, Any], timezone: str, links: EmailLinks | None = None) -> RenderedEmail:
        context = self.context(event, timezone)
        if links is not None:
            context["links"] = links
        subject = self.call(self.text_template, {**context, "part": "subject"})
        text = self.call(self.text_template, {**context, "part": "text"})
        html = self.call(self.html_template, {**context, "part": "html"})
        return RenderedEmail(" ".join(subject.split()), _tidy_paragraphs(text), html.strip() + "\n",
                             unsubscribe=links.unsubscribe if links is not None else None)


def _tidy_paragraphs(text: str) -> str:
    """Paragraphs separated by one blank line, each on one line."""
    paragraphs = (" ".join(p.split()) for p in BLANK_LINES.split(text))
    return "\n\n".join(p for p in paragraphs if p) + "\n"
