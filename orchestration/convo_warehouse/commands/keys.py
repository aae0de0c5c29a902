"""``convo-warehouse keys``: create, list and revoke the collector's keys; define projects."""

from __future__ import annotations

import click

from convo_warehouse.collector.keys import SCOPES, KeyFileError, keys_path

keys_file_option = click.option(
    "--keys-file", type=click.Path(dir_okay=False), default=None,
    help="The keys file (default: $CONVO_COLLECTOR_KEYS_FILE or data/collector_keys.json).")


def _file_mode() -> int:
    from convo_warehouse.lib.file_modes import file_mode

    try:
        return file_mode()
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def keys() -> None:
    """The collector's API keys (docs/capture.md#keys).

    An ingest key sends events and can never read; a read key reads the live
    state (the dashboard's Live page). A key bound to agents (--agent-id, or
    --project) writes and reads only those agents' conversations. The file
    holds a hash of each secret; the collector reads it again when it
    changes, so creating, rotating and revoking need no restart. Rotate by
    creating a new key, deploying it, then revoking the old one.
    """


@keys.command()
@click.option("--scope", "scopes", type=click.Choice(SCOPES), multiple=True, required=True,
              help="What the key may do (repeat for both): ingest (send) or read (live state).")
@click.option("--name", required=True, help="Who holds it, for people reading `keys list` (e.g. 'web widget').")
@click.option("--agent-id", "agent_ids", multiple=True,
              help="Bind the key to this agent_id (repeat it). Default: every agent.")
@click.option("--project", default=None, help="Bind the key to a project defined with `keys project`.")
@keys_file_option
def create(scopes: tuple[str, ...], name: str, agent_ids: tuple[str, ...], project: str | None,
           keys_file: str | None) -> None:
    """Create a key and print its secret (shown once: the file keeps only its hash)."""
    from convo_warehouse.collector.keys import create_key

    path = keys_path(keys_file)
    try:
        token, record = create_key(path, name, scopes, agent_ids, project, _file_mode())
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(token)
    click.echo(f"key {record['key_id']} ({', '.join(record['scopes'])}) written to {path}; the secret above is "
               "shown only now.", err=True)


@keys.command(name="list")
@keys_file_option
def list_keys(keys_file: str | None) -> None:
    """List the keys (ids, names, scopes, bindings, created and revoked times; never secrets)."""
    from convo_warehouse.collector.keys import read_document

    path = keys_path(keys_file)
    try:
        document = read_document(path)
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    for name, agent_ids in sorted(document["projects"].items()):
        click.echo(f"project {name}: agents {', '.join(agent_ids) or '(none)'}")
    for record in document["keys"]:
        bound = (f"project {record['project']}" if record.get("project")
                 else "agents " + ", ".join(record["agent_ids"]) if record.get("agent_ids") else "every agent")
        state = f"revoked {record['revoked_at']}" if record.get("revoked_at") else "active"
        click.echo(f"{record['key_id']}  {','.join(record['scopes']):<11}  {bound:<30}  created "
                   f"{record.get('created_at')}  {state}  {record.get('name')}")
    if not document["keys"]:
        click.echo(f"no keys in {path}: create one with `convo-warehouse keys create`", err=True)


@keys.command()
@click.argument("key_id")
@keys_file_option
def revoke(key_id: str, keys_file: str | None) -> None:
    """Revoke KEY_ID (refused by the collector within a second, no restart)."""
    from convo_warehouse.collector.keys import revoke_key

    try:
        record = revoke_key(keys_path(keys_file), key_id, _file_mode())
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"key {key_id} ({record.get('name')}) revoked at {record['revoked_at']}")


@keys.command()
@click.argument("name")
@click.option("--agent-id", "agent_ids", multiple=True, required=True, help="An agent_id of the project (repeat it).")
@keys_file_option
def project(name: str, agent_ids: tuple[str, ...], keys_file: str | None) -> None:
    """Define project NAME as these agents (replacing its list); its keys follow at once."""
    from convo_warehouse.collector.keys import set_project

    try:
        set_project(keys_path(keys_file), name, agent_ids, _file_mode())
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"project {name}: agents {', '.join(sorted(set(agent_ids)))}")
