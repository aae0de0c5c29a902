"""The ``convo-warehouse`` command line.

Each subcommand lives in its own module under ``convo_warehouse.commands`` and
is imported only when it is called, so ``--help`` stays fast. Add a command by
adding one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "api": "convo_warehouse.commands.api:api",
    "funnel": "convo_warehouse.commands.funnel:funnel",
    "keys": "convo_warehouse.commands.keys:keys",
    "generate": "convo_warehouse.commands.generate:generate",
    "experiments": "convo_warehouse.commands.experiments:experiments",
    "classify-eval": "convo_warehouse.commands.classify_eval:classify_eval",
    "classify": "convo_warehouse.commands.classify:classify",
    "collect": "convo_warehouse.commands.collect:collect",
    "dashboard": "convo_warehouse.commands.dashboard:dashboard",
    "export": "convo_warehouse.commands.export:export",
    "patterns": "convo_warehouse.commands.patterns:patterns",
    "run": "convo_warehouse.commands.run:run",
    "ui": "convo_warehouse.commands.ui:ui",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convo-warehouse")
def main() -> None:
    """Conversation-analytics warehouse: dbt on DuckDB, orchestrated by Dagster."""
    import atexit
    import gc

    from convo_warehouse.lib.file_modes import apply_umask

    # The interpreter's last garbage collection walks every object still alive
    # (after a run: the dbt manifest and Dagster's definitions, seconds of it)
    # to free nothing the process's end would not; frozen, it skips them.
    atexit.register(gc.freeze)
    try:
        # files DuckDB, dbt and Dagster create for us (the warehouse's WAL) are owner-only too
        apply_umask()
    except ValueError as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
