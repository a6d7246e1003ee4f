"""What every channel's template shares: loading, the context templates see,
and turning template faults into :class:`TemplateError`.

A channel is one subclass of :class:`ChannelTemplate` that names its
``channel``, loads its Jinja2 templates in :meth:`ChannelTemplate.load` and
turns an event into what its notifier sends in :meth:`ChannelTemplate.render`.
The renderer finds the class by channel name, and hands ``render`` only the
parts of a message it names in ``uses`` (an email's ``links``, an SMS's
``ack_code``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import jinja2

__all__ = ["TemplateError", "Environments", "ChannelTemplate"]


class TemplateError(Exception):
    """No template for an event, or a template failed; the message names which."""


@dataclass(frozen=True)
class Environments:
    """The two Jinja2 environments over one template folder."""

    #: No autoescaping: SMS, subjects and plain-text parts, where ``<`` is just ``<``.
    text: jinja2.Environment
    #: Autoescaping: HTML parts.
    html: jinja2.Environment


class ChannelTemplate(abc.ABC):
    """The templates of one event type, for one channel, in one language."""

    #: The channel name a notice job carries ("sms", "email").
    channel: ClassVar[str]
    #: What a message of this channel shows beside the event: keyword arguments of :meth:`render`.
    uses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, language: str):
        #: The template's path in the folder, e.g. ``es/RELEASED.sms.j2``; errors name it.
        self.name = name
        #: The language found, which may be the default rather than the one asked for.
        self.language = language

    @classmethod
    @abc.abstractmethod
    def load(cls, envs: Environments, name: str, language: str, event_type: str) -> ChannelTemplate:
        """Compile the template ``name``; :class:`jinja2.TemplateNotFound` when there is none."""

    @abc.abstractmethod
    def render(self, event: dict[str, Any], timezone: str) -> Any:
        """What the channel's notifier sends for ``event`` (a JSON-mode event dict)."""

    def context(self, event: dict[str, Any], timezone: str) -> dict[str, Any]:
        try:
            payload, offender = event["payload"], event["offender_name"]
        except KeyError as e:
            raise TemplateError(f"event has no {e.args[0]!r}") from None
        return {"event": event, "p": payload, "offender": offender, "lang": self.language, "tz": timezone}

    def call(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        try:
            return template.render(context)
        except jinja2.TemplateError as e:
            raise TemplateError(f"template {self.name} failed: {type(e).__name__}: {e}") from e
        except (ValueError, TypeError, LookupError, ArithmeticError) as e:
            # Such a message may quote the value, which may be personal: only its kind is kept.
            raise TemplateError(f"template {self.name} failed on a value: {type(e).__name__}") from e
