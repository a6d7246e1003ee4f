"""The other end of the fake Twilio's calls: scripted callees, and one call played
to its end as Twilio plays it.

A :class:`Callee` says who picks up (a person, someone who hangs up at once, an
answering machine) or why nobody does (no answer, busy, failed), and what a
person types at each ``<Gather>``. :class:`CallPlayer` rings it, and for a callee
that answers fetches the call's TwiML the way Twilio does: the documented call
parameters, ``AnsweredBy`` when machine detection was asked, signed with the
account's auth token. It follows ``<Say>``, ``<Play>``, ``<Pause>``,
``<Gather>``, ``<Redirect>`` and ``<Hangup>``, posts a Gather's digits to its
``action``, and at the end posts the status callback. Everything it heard and
did is written to the call's :class:`PlacedCall`.

What a call takes is simulated, not waited for: a ``<Pause>`` or a
``<Gather>`` timeout adds to the call's ``duration`` (CallDuration) and costs no
wall-clock time. Nothing here logs a number, a digit or a word said.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.utils
import math
import re
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

__all__ = ["Callee", "CalleeKind", "PlacedCall", "Said", "CallPlayer", "ANSWERED_BY", "CALL_EVENTS",
           "MACHINE_DETECTION", "rfc2822"]

#: ``AnsweredBy`` as Twilio's answering machine detection reports it.
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax",
               "unknown")
#: The values of ``MachineDetection``.
MACHINE_DETECTION = ("Enable", "DetectMessageEnd")
#: The values of ``StatusCallbackEvent``, and the CallStatus each event's callback carries
#: (``initiated`` is accepted but not sent by the fake).
CALL_EVENTS = {"initiated": None, "ringing": "ringing", "answered": "in-progress", "completed": None}
#: The media types Twilio reads as TwiML.
XML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
#: The verbs the fake plays, and those it plays nested in ``<Gather>``.
HEARD = frozenset({"Say", "Play", "Pause"})

#: (method, url, extra parameters): the next TwiML request of a call.
Request = Callable[[str, str, dict[str, str]], Awaitable[tuple[int, str, str]]]


def rfc2822(at: float) -> str:
    return email.utils.format_datetime(dt.datetime.fromtimestamp(at, dt.timezone.utc).replace(microsecond=0))


class CalleeKind(StrEnum):
    PERSON = "person"        # answers, listens, types its ``digits`` at each <Gather>
    HANGS_UP = "hangs_up"    # answers, the TwiML is fetched, hangs up before anything is said
    MACHINE = "machine"      # an answering machine: listens to everything, never types
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


#: The final CallStatus of a callee that does not answer.
UNANSWERED = {CalleeKind.NO_ANSWER: "no-answer", CalleeKind.BUSY: "busy", CalleeKind.FAILED: "failed"}


@dataclass(frozen=True)
class Callee:
    """Who is at a number. ``digits``: what a person types at each successive
    ``<Gather>`` of the call (``("2468#", "1")``; ``""`` types nothing at that one).
    ``answered_by`` overrides what machine detection reports, e.g. ``"unknown"`` for
    a person, or ``"human"`` for a machine the detection mistakes for one."""

    kind: CalleeKind = CalleeKind.PERSON
    digits: tuple[str, ...] = ()
    answered_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CalleeKind(self.kind))
        if isinstance(self.digits, str):
            raise TypeError("digits is a tuple: what is typed at each <Gather>, e.g. ('2468#', '1')")
        object.__setattr__(self, "digits", tuple(self.digits))
        if any(re.fullmatch(r"[0-9*#]*", d) is None for d in self.digits):
            raise ValueError("digits are keys of a phone's keypad: 0-9, * and #")
        if self.answered_by is not None and self.answered_by not in ANSWERED_BY:
            raise ValueError(f"answered_by is one of {ANSWERED_BY}")

    @property
    def answers(self) -> bool:
        return self.kind not in UNANSWERED

    def detected_as(self, machine_detection: str | None) -> str | None:
        """``AnsweredBy`` for this callee; None when detection was not asked or nobody answered."""
        if machine_detection is None or not self.answers:
            return None
        if self.answered_by is not None:
            return self.answered_by
        if self.kind is CalleeKind.MACHINE:
            return "machine_end_beep" if machine_detection == "DetectMessageEnd" else "machine_start"
        return "human"


class Said(NamedTuple):
    """One ``<Say>`` as heard: its text (white space folded) and its attributes."""

    text: str
    voice: str | None
    language: str | None


@dataclass
class PlacedCall:
    """A call the fake accepted, and everything that happened on it so far.

    :attr:`FakeTwilio.calls` hands out copies; the fake changes its own under its lock.
    """

    sid: str
    to: str
    from_: str
    url: str | None  # None when the call was created with inline ``Twiml``
    method: str
    status_callback: str | None
    status_callback_method: str
    status_callback_events: tuple[str, ...]
    machine_detection: str | None
    timeout: int  # seconds to let it ring
    at: float  # time.time() when accepted
    callee: Callee
    #: The call's CallStatus: queued, ringing, in-progress, then the final one.
    status: str = "queued"
    answered_by: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    #: Simulated seconds from answer to hang-up (CallDuration); 0 when not answered.
    duration: int = 0
    #: Every ``<Say>`` heard, in order, nested ones included.
    said: list[Said] = field(default_factory=list)
    #: The ``Digits`` posted to each Gather ``action``, in order.
    digits: list[str] = field(default_factory=list)
    #: The top-level verbs played, in order.
    verbs: list[str] = field(default_factory=list)
    #: Every TwiML document the call got (inline ``Twiml`` first), raw, in order.
    twiml: list[str] = field(default_factory=list)
    #: The HTTP status of each TwiML request (-1: unreachable).
    http: list[int] = field(default_factory=list)
    #: What went wrong, as Twilio's debugger would say it (codes and names, never values).
    errors: list[str] = field(default_factory=list)
    #: (CallStatus sent, HTTP status of the receiver or -1) of each status callback.
    callbacks: list[tuple[str, int]] = field(default_factory=list)
    #: True once the call is over and its last status callback was answered.
    finished: bool = False

    @property
    def spoken(self) -> str:
        """All that was said, in order, as one text."""
        return " ".join(s.text for s in self.said)

    def snapshot(self) -> "PlacedCall":
        return dataclasses.replace(self, **{f.name: list(getattr(self, f.name)) for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), list)})


class _HangUp(Exception):
    """The call ends here."""


def _number(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value))) if value is not None else default
    except ValueError:
        return default


class CallPlayer:
    """Plays one accepted call to its end with its callee on the line, as Twilio would.

    ``request(method, url, params)`` makes one signed webhook request and returns
    (HTTP status or -1, content type, body); ``lock`` guards ``call``, which tests
    read from other threads. ``twiml`` is the call's inline ``Twiml``, if any.
    """

    def __init__(self, call: PlacedCall, request: Request, lock: threading.Lock, account_sid: str,
                 api_version: str, *, twiml: str | None = None, ring: float = 0.01, max_fetches: int = 50):
        self.call = call
        self.request = request
        self.lock = lock
        self.account = {"AccountSid": account_sid, "ApiVersion": api_version}
        self.twiml = twiml
        self.ring = ring
        self.max_fetches = max_fetches
        self._typed = iter(call.callee.digits)
        self._seconds = 0.0
        self._fetches = 0
        self._sequence = 0

    # ---- the call's record ------------------------------------------------------------

    def _set(self, **changes) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(self.call, name, value)

    def _add(self, name: str, item) -> None:
        with self.lock:
            getattr(self.call, name).append(item)

    def _fail(self, reason: str) -> _HangUp:
        self._add("errors", reason)
        return _HangUp(reason)

    def params(self) -> dict[str, str]:
        """The parameters of every request Twilio makes about this call."""
        c = self.call
        params = {**self.account, "CallSid": c.sid, "CallStatus": c.status, "Called": c.to, "Caller": c.from_,
                  "Direction": "outbound-api", "From": c.from_, "To": c.to}
        if c.answered_by is not None:
            params["AnsweredBy"] = c.answered_by
        return params

    # ---- the call from ringing to hang-up -------------------------------------------------

    async def run(self) -> None:
        c = self.call
        try:
            await asyncio.sleep(self.ring)
            self._set(status="ringing")
            await self._event("ringing")
            if not c.callee.answers:
                self._set(status=UNANSWERED[c.callee.kind], ended_at=time.time())
            else:
                self._set(status="in-progress", answered_by=c.callee.detected_as(c.machine_detection),
                          answered_at=time.time())
                await self._event("answered")
                try:
                    await self._converse()
                except _HangUp:
                    pass
                except Exception as e:  # noqa: BLE001 - a fault of the fake ends the call, recorded
                    self._add("errors", f"the fake failed: {type(e).__name__}")
                self._set(status="completed", duration=max(1, math.ceil(self._seconds)), ended_at=time.time())
            await self._event("completed")
        finally:
            self._set(finished=True)

    async def _event(self, event: str) -> None:
        """The status callback of ``event``, if the call asked for it."""
        c = self.call
        if not c.status_callback or event not in c.status_callback_events:
            return
        params = self.params()
        if event == "completed":
            params["CallDuration"] = str(c.duration)
        params |= {"CallbackSource": "call-progress-events", "SequenceNumber": str(self._sequence),
                   "Timestamp": rfc2822(time.time())}
        self._sequence += 1
        status, _, _ = await self.request(c.status_callback_method, c.status_callback, params)
        self._add("callbacks", (params["CallStatus"], status))

    async def _converse(self) -> None:
        c = self.call
        step: tuple[str, str | None, dict[str, str]] | None = (c.method, c.url, {})
        while step is not None:
            method, url, extra = step
            if url is None:  # the inline Twiml of the call's creation
                document = self.twiml or ""
                self._add("twiml", document)
            else:
                document = await self._fetch(method, url, extra)
            root = self._parse(document)
            if c.callee.kind is CalleeKind.HANGS_UP:
                return
            step = self._play(list(root), url)

    async def _fetch(self, method: str, url: str, extra: dict[str, str]) -> str:
        self._fetches += 1
        if self._fetches > self.max_fetches:
            raise self._fail(f"the call asked for TwiML more than {self.max_fetches} times")
        status, content_type, body = await self.request(method, url, {**self.params(), **extra})
        self._add("http", status)
        if not 200 <= status < 300:
            raise self._fail("11200 HTTP retrieval failure")
        self._add("twiml", body)
        if content_type not in XML_TYPES:
            raise self._fail("12300 Invalid Content-Type")
        return body

    def _parse(self, document: str) -> ET.Element:
        try:
            root = ET.fromstring(document.encode("utf-8"))
        except ET.ParseError:
            raise self._fail("12100 Document parse failure") from None
        if root.tag != "Response":
            raise self._fail("12100 Document parse failure: the root element is not <Response>")
        return root

    # ---- TwiML ---------------------------------------------------------------------------

    def _play(self, verbs: list[ET.Element], base: str | None) -> tuple[str, str, dict[str, str]] | None:
        """Play ``verbs``; the next request to make, or None to hang up."""
        for verb in verbs:
            self._add("verbs", verb.tag)
            if verb.tag in HEARD:
                self._hear(verb)
            elif verb.tag == "Gather":
                if (step := self._gather(verb, base)) is not None:
                    return step
            elif verb.tag == "Redirect":
                return self._method(verb), self._resolve(verb.text or "", base), {}
            elif verb.tag == "Hangup":
                return None
            else:
                raise self._fail(f"12200 Schema validation warning: <{verb.tag}> is not a verb the fake plays")
        return None  # the end of a document hangs up

    def _hear(self, verb: ET.Element) -> None:
        loops = _number(verb.get("loop"), 1, 0, 10) or 10  # loop="0" repeats until hang-up
        if verb.tag == "Say":
            text = " ".join("".join(verb.itertext()).split())
            for _ in range(loops):
                self._add("said", Said(text, verb.get("voice"), verb.get("language")))
                self._seconds += max(1.0, len(text.split()) / 2.5)
        elif verb.tag == "Play":
            self._seconds += loops
        else:
            self._seconds += _number(verb.get("length"), 1, 0, 600)

    def _gather(self, gather: ET.Element, base: str | None) -> tuple[str, str, dict[str, str]] | None:
        """The request to the Gather's action, or None to go on with the next verb."""
        for child in gather:
            if child.tag not in HEARD:
                raise self._fail(f"12200 Schema validation warning: <{child.tag}> cannot be nested in <Gather>")
            self._hear(child)
        digits, finished = self._type(gather)
        if not finished:
            self._seconds += _number(gather.get("timeout"), 5, 1, 600)
        if not digits and gather.get("actionOnEmptyResult", "false").lower() != "true":
            return None
        self._add("digits", digits)
        return self._method(gather), self._resolve(gather.get("action", ""), base), {"Digits": digits}

    def _type(self, gather: ET.Element) -> tuple[str, bool]:
        """What reaches Twilio of the callee's keys at this Gather, and whether a key
        (finishOnKey, or the last of numDigits) ended it before its timeout."""
        if self.call.callee.kind is not CalleeKind.PERSON or "dtmf" not in gather.get("input", "dtmf").split():
            return "", False
        finish = gather.get("finishOnKey", "#")
        most = _number(gather.get("numDigits"), 0, 1, 1000)
        got: list[str] = []
        for key in next(self._typed, ""):
            if finish and key == finish:
                return "".join(got), True
            got.append(key)
            if most and len(got) >= most:
                return "".join(got), True
        return "".join(got), False

    def _method(self, verb: ET.Element) -> str:
        method = verb.get("method", "POST").upper()
        if method not in ("GET", "POST"):
            raise self._fail(f"12200 Schema validation warning: <{verb.tag}> method must be GET or POST")
        return method

    def _resolve(self, target: str, base: str | None) -> str:
        """``target`` (relative to the document's URL; empty: the document itself) as an absolute URL."""
        url = urllib.parse.urljoin(base, target.strip()) if base else target.strip()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self._fail("11100 Invalid URL format")
        return url
