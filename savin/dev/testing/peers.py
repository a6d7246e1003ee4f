"""The fake Twilio and the SMTP server in a process of their own, so that whoever
measures savin (the benchmark) does not share its CPU with what serves it.

    python -m savin.dev.testing.peers [--twilio-latency S] [--twilio NAME=JSON ...]
                                      [--callee-digits D ...]

Prints one JSON line, ``{"twilio": base URL, "smtp_port": port, "control": URL}``,
then serves until terminated. ``--twilio NAME=JSON`` sets an attribute of the
:class:`~savin.dev.testing.fake_twilio.FakeTwilio` (``calls_per_second=2``, a
rate limit, ``callbacks_enabled=false``); ``--callee-digits`` makes every
number's callee a person who answers and types those digits, one entry each.

The control URL answers what the peers received, as JSON: ``/counts``,
``/messages?since=N``, ``/calls`` and ``/mails?since=N`` (destination and
acceptance time, never a body). :class:`RemotePeers` starts the process and
reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass

from aiohttp import web

__all__ = ["RemotePeers", "Delivered", "serve"]


@dataclass(frozen=True)
class Delivered:
    """One accepted message, call or mail: its destination and when it was accepted (time.time())."""

    to: str
    at: float


def _counts(twilio, smtp) -> dict[str, int]:
    faults = twilio.faults
    return {
        "messages": len(twilio._messages),
        "calls": len(twilio._lists["calls"]),
        "mails": len(smtp._messages),
        # Messages and calls refused for going over the fake's rate limits, and injected 429s.
        "too_many_requests": twilio.too_many_requests,
        "faults_429": sum(1 for f in faults if f.http_status == 429),
        "rejected": len(twilio.rejected),
    }


def _control_app(twilio, smtp) -> web.Application:
    def since(request: web.Request) -> int:
        return max(0, int(request.query.get("since", "0")))

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(_counts(twilio, smtp))

    async def messages(request: web.Request) -> web.Response:
        with twilio._lock:
            got = [(m.to, m.at) for m in twilio._messages[since(request):]]
        return web.json_response(got)

    async def calls(request: web.Request) -> web.Response:
        return web.json_response([(c.to, c.at) for c in twilio.calls])

    async def mails(request: web.Request) -> web.Response:
        with smtp._lock:
            got = [(m.rcpt_tos[0] if m.rcpt_tos else "", m.at) for m in smtp._messages[since(request):]]
        return web.json_response(got)

    app = web.Application()
    app.router.add_get("/counts", counts)
    app.router.add_get("/messages", messages)
    app.router.add_get("/calls", calls)
    app.router.add_get("/mails", mails)
    return app


async def serve(twilio_latency: float, twilio_options: dict[str, object], callee_digits: tuple[str, ...]) -> None:
    """Run both peers and the control server until SIGTERM or SIGINT."""
    from savin.dev.testing.callee import Callee
    from savin.dev.testing.fake_twilio import FakeTwilio
    from savin.dev.testing.smtp_server import SmtpCatcher
    from savin.dev.testing.stack import SMTP_PASSWORD, SMTP_USER, TWILIO_SID, TWILIO_TOKEN

    twilio = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    twilio.latency = twilio_latency
    for name, value in twilio_options.items():
        if not hasattr(twilio, name):
            raise SystemExit(f"the fake Twilio has no option {name!r}")
        setattr(twilio, name, value)
    if callee_digits:
        twilio.default_callee = Callee("person", digits=callee_digits)
    await twilio.start()
    smtp = SmtpCatcher(username=SMTP_USER, password=SMTP_PASSWORD).start()
    runner = web.AppRunner(_control_app(twilio, smtp), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"twilio": twilio.base_url, "smtp_port": smtp.port, "control": f"http://127.0.0.1:{port}"}),
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await twilio.stop()
        smtp.stop()
        smtp.close()


class _Tail:
    """What one peer accepted so far, in order, fetched from the peers' process a part at a time."""

    def __init__(self, peers: "RemotePeers", path: str):
        self._peers, self._path = peers, path
        self._seen: list[Delivered] = []

    def __call__(self) -> list[Delivered]:
        got = self._peers.get(f"{self._path}?since={len(self._seen)}")
        self._seen.extend(Delivered(to, at) for to, at in got)
        return list(self._seen)


class _RemoteTwilio:
    """What a :class:`~savin.dev.stack.LocalStack` and the benchmark read of the fake Twilio."""

    def __init__(self, peers: "RemotePeers", base_url: str):
        self._peers, self.base_url = peers, base_url
        self._messages = _Tail(peers, "/messages")

    @property
    def messages(self) -> list[Delivered]:
        """Every accepted message so far, in order."""
        return self._messages()

    @property
    def calls(self) -> list[Delivered]:
        return [Delivered(to, at) for to, at in self._peers.get("/calls")]

    @property
    def too_many_requests(self) -> int:
        return self._peers.counts()["too_many_requests"]

    def stop_thread(self) -> None:
        """The process is stopped by :meth:`RemotePeers.stop`."""


class _RemoteSmtp:
    def __init__(self, peers: "RemotePeers", port: int):
        self.port = port
        self._mails = _Tail(peers, "/mails")

    @property
    def messages(self) -> list[Delivered]:
        """Every received mail so far, in order."""
        return self._mails()

    def stop(self) -> None:
        """The process is stopped by :meth:`RemotePeers.stop`."""


class RemotePeers:
    """The peers' process: started by :meth:`start`, read over its control URL, stopped by :meth:`stop`.

    ``twilio`` and ``smtp`` stand in for the in-process peers in a
    :class:`~savin.dev.testing.stack.LocalStack` (its ``base_url`` and ``port``,
    and what they accepted)."""

    def __init__(self, twilio_latency: float = 0.0, callee_digits: tuple[str, ...] = (), **twilio_options: object):
        self.twilio_latency = twilio_latency
        self.callee_digits = callee_digits
        self.twilio_options = twilio_options
        self.proc: subprocess.Popen | None = None
        self.control = ""
        self.twilio: _RemoteTwilio | None = None
        self.smtp: _RemoteSmtp | None = None

    def start(self, timeout: float = 60.0) -> "RemotePeers":
        args = [sys.executable, "-m", "savin.dev.testing.peers", "--twilio-latency", str(self.twilio_latency)]
        for name, value in self.twilio_options.items():
            args += ["--twilio", f"{name}={json.dumps(value)}"]
        for digits in self.callee_digits:
            args += ["--callee-digits", digits]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout)
            raise RuntimeError(f"the peers' process exited ({code}) before it was ready")
        where = json.loads(line)
        self.control = where["control"]
        self.twilio = _RemoteTwilio(self, where["twilio"])
        self.smtp = _RemoteSmtp(self, where["smtp_port"])
        return self

    def get(self, path: str):
        with urllib.request.urlopen(self.control + path, timeout=30) as r:
            return json.load(r)

    def counts(self) -> dict[str, int]:
        """How many messages, calls and mails were accepted, and how many requests got 429."""
        return self.get("/counts")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m savin.dev.testing.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--twilio-latency", type=float, default=0.0, help="seconds added before each answer")
    parser.add_argument("--twilio", action="append", default=[], metavar="NAME=JSON",
                        help="set an attribute of the fake Twilio")
    parser.add_argument("--callee-digits", action="append", default=[], metavar="DIGITS",
                        help="every callee answers and types these, one entry per prompt")
    a = parser.parse_args(argv)
    options = {}
    for item in a.twilio:
        name, _, value = item.partition("=")
        options[name] = json.loads(value)
    asyncio.run(serve(a.twilio_latency, options, tuple(a.callee_digits)))


if __name__ == "__main__":
    main()
