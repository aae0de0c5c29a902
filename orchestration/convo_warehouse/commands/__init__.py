"""One module per CLI subcommand; see ``convo_warehouse.cli.COMMANDS``."""
