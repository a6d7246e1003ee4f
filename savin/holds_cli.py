"""``savin holds``: the holds on mass changes and the blocks of one offender's notices.

``list`` and ``show`` read; ``approve``, ``reject`` and ``block`` act, and each
action is recorded on ``operator-audit`` as done by ``cli`` (with the operator
named by ``--by``, or the shell's user).
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Optional

import typer

from savin.operators_cli import fail, kafka, say, settings, show_table

__all__ = ["register"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
holds_app = typer.Typer(help="Holds on mass changes and blocks of one offender's notices: list, approve, reject.",
                        no_args_is_help=True, context_settings=CONTEXT, pretty_exceptions_enable=False)

WhyOption = typer.Option(..., "--why", help="Why: kept with the decision and on the audit trail.")
ByOption = typer.Option(None, "--by", help="The operator deciding (default: cli:<your user name>).")
JsonOption = typer.Option(False, "--json", help="JSON instead of a table.")


def register(app: typer.Typer) -> None:
    app.add_typer(holds_app, name="holds")


def _when(value: Optional[datetime]) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _what(hold) -> str:
    return f"{hold.event_type} from {hold.source}" if hold.kind.value == "mass" else f"offender {hold.offender_id}"


def _problem(work):
    """Run ``work`` against Kafka; an operator's mistake becomes one line naming the field."""
    from savin.ops.problems import Problem

    async def run():
        try:
            return await work()
        except Problem as e:
            return e

    result = kafka(settings(), run)
    if isinstance(result, Problem):
        raise fail(f"{_ARGUMENT.get(result.field, result.field)}: {result.message}", 2 if result.status == 400 else 1)
    return result


#: How the command line names each field a problem concerns.
_ARGUMENT = {"hold_id": "HOLD_ID", "offender_id": "OFFENDER_ID", "why": "--why"}


def _audit(what: str, ids: dict, detail: str | None = None) -> None:
    from savin.ops.operators import action, write_records

    s = settings()
    kafka(s, lambda: write_records(s, [action("cli", what, datetime.now(UTC), ids, detail=detail, via="cli")]))


@holds_app.command("list")
def list_holds(all_: bool = typer.Option(False, "--all", help="Decided holds too (default: open ones)."),
               as_json: bool = JsonOption):
    """The holds waiting for an operator (with --all, every hold)."""
    from savin.ops.holds import read_holds

    s = settings()
    holds = [h for h in kafka(s, lambda: read_holds(s)) if all_ or h.state.value == "open"]
    if as_json:
        for h in holds:
            print(h.model_dump_json())
        return
    if not holds:
        say("No holds open." if not all_ else "No holds.")
        return
    show_table("Holds", [("hold", True), ("state", False), ("holds back", False), ("opened", False),
                         ("reason", False), ("decided by", False)],
               [[str(h.hold_id), h.state.value, _what(h), _when(h.opened_at), h.reason, h.decided_by or ""]
                for h in holds])


@holds_app.command("show")
def show(hold_id: str = typer.Argument(..., help="The hold's id."), as_json: bool = JsonOption):
    """One hold and the notices it keeps back (ids only)."""
    from savin.ops.holds import find_hold, held_notices

    s = settings()

    async def work():
        hold = await find_hold(s, hold_id)
        return hold, await held_notices(s, hold.hold_id)

    hold, held = _problem(work)
    if as_json:
        print(json.dumps({"hold": json.loads(hold.model_dump_json()),
                          "notices": [{"notice_id": str(h.job.notice_id), "event_id": str(h.job.event_id),
                                       "event_type": h.job.event_type, "registration_id": h.job.registration_id,
                                       "channel": h.job.channel.value} for h in held]}))
        return
    say(f"hold {hold.hold_id}: {hold.state.value}, {hold.kind.value} hold of {_what(hold)}")
    say(f"  opened {_when(hold.opened_at)}{' by ' + hold.opened_by if hold.opened_by else ''}: {hold.reason}")
    if hold.decided_by:
        say(f"  {hold.state.value} {_when(hold.decided_at)} by {hold.decided_by}: {hold.why}")
    events = {h.job.event_id for h in held}
    say(f"  {len(held)} notices of {len(events)} events held")


def _decide(hold_id: str, approve: bool, why: str, by: Optional[str]) -> None:
    from savin.ops.holds import decide

    s = settings()
    who = by or f"cli:{getpass.getuser()}"
    decision = _problem(lambda: decide(s, hold_id, approve, who, why, progress=lambda m: say(f"... {m}")))
    verb = "approve" if approve else "reject"
    _audit(f"hold.{verb}", {"hold": [str(decision.hold.hold_id)]}, f"{decision.notices} notices; by {who}: {why}")
    if approve:
        say(f"hold {decision.hold.hold_id} approved by {who}: {decision.notices} notices released, urgent first")
    else:
        say(f"hold {decision.hold.hold_id} rejected by {who}: {decision.notices} notices recorded as rejected, "
            "none sent")


@holds_app.command("approve")
def approve(hold_id: str = typer.Argument(..., help="The hold's id (savin holds list)."), why: str = WhyOption,
            by: Optional[str] = ByOption):
    """Send everything the hold keeps back: urgent first, then in event order."""
    _decide(hold_id, True, why, by)


@holds_app.command("reject")
def reject(hold_id: str = typer.Argument(..., help="The hold's id (savin holds list)."), why: str = WhyOption,
           by: Optional[str] = ByOption):
    """Send nothing the hold keeps back; each held notice is recorded as rejected, with who and why."""
    _decide(hold_id, False, why, by)


@holds_app.command("block")
def block(offender_id: str = typer.Argument(..., help="The offender whose notices to hold."), why: str = WhyOption,
          by: Optional[str] = ByOption):
    """Hold every notice about one offender while a record is being fixed; approve or reject the block after."""
    from savin.ops.holds import block as block_offender

    s = settings()
    who = by or f"cli:{getpass.getuser()}"
    hold = _problem(lambda: block_offender(s, offender_id, who, why))
    _audit("hold.block", {"hold": [str(hold.hold_id)], "offender": [offender_id]}, f"by {who}: {why}")
    say(f"notices about offender {offender_id} are held by hold {hold.hold_id}; "
        f"`savin holds approve {hold.hold_id}` sends them, `savin holds reject` drops them")
