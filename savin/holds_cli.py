"""``savin holds``: the holds on mass changes and the blocks of one offender's notices."""

from __future__ import annotations

import typer

__all__ = ["register"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
holds_app = typer.Typer(help="Holds on mass changes and blocks of one offender's notices: list, approve, reject.",
                        no_args_is_help=True, context_settings=CONTEXT, pretty_exceptions_enable=False)


def register(app: typer.Typer) -> None:
    app.add_typer(holds_app, name="holds")
