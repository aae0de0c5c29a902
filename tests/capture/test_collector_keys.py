"""Scoped, agent-bound keys through a real collector on 127.0.0.1 (issue 47, item 2): an ingest key
(what every SDK embeds) sends and never reads; a read key reads and never sends; a key bound to one
team's agents neither writes as nor reads another team's conversations; keys are created, rotated and
revoked with `convo-warehouse keys` while the collector runs; old CONVO_COLLECTOR_TOKENS still work."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request

import pytest
from support.capture import REPO_ROOT, CollectorProcess, wait_for
from support.live import Script


def keys_command(keys_file, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convo_warehouse.cli", "keys", *arguments, "--keys-file",
                           str(keys_file)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


def create(keys_file, *arguments: str) -> str:
    result = keys_command(keys_file, "create", *arguments)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def request(collector: CollectorProcess, method: str, path: str, key: str, body: object = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", **({"Content-Type": "application/json"} if data else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(collector.url + path, data=data, method=method,
                                                           headers=headers), timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def message(conversation_id: str, number: int, agent_id: str | None = None, text: str = "my parcel is late") -> dict:
    event = Script(conversation_id).event("user_message", text)
    event["event_id"] = f"{conversation_id}-{number}"
    if agent_id is not None:
        event["properties"]["agent_id"] = agent_id
    return event


@pytest.fixture
def keyed(tmp_path):
    keys_file = tmp_path / "keys.json"
    assert keys_command(keys_file, "project", "team-b", "--agent-id", "bot-b1", "--agent-id", "bot-b2").returncode == 0
    keys = {
        "ingest_a": create(keys_file, "--scope", "ingest", "--name", "team A widget", "--agent-id", "bot-a"),
        "read_a": create(keys_file, "--scope", "read", "--name", "team A dashboard", "--agent-id", "bot-a"),
        "ingest_b": create(keys_file, "--scope", "ingest", "--name", "team B agents", "--project", "team-b"),
        "read_b": create(keys_file, "--scope", "read", "--name", "team B dashboard", "--project", "team-b"),
        "read_all": create(keys_file, "--scope", "read", "--name", "operations"),
    }
    collector = CollectorProcess(tmp_path / "landing", None, "", "--rotate-seconds", "0.5",
                                 keys_file=keys_file).start()
    yield collector, keys, keys_file
    collector.stop()


def test_an_ingest_key_sends_but_never_reads(keyed):
    collector, keys, _ = keyed
    status, answer = request(collector, "POST", "/v1/events", keys["ingest_a"], [message("c-a", 1, "bot-a")])
    assert status == 200 and answer["accepted"] == 1
    for path in ("/v1/conversations?active=true", "/v1/conversations/c-a", "/v1/live"):
        status, answer = request(collector, "GET", path, keys["ingest_a"])
        assert status == 403, path
        assert "lacks the read scope" in answer["error"] and "team A widget" in answer["error"]
    status, answer = request(collector, "POST", "/v1/events", keys["read_a"], [message("c-a", 2, "bot-a")])
    assert status == 403 and "lacks the ingest scope" in answer["error"]
    status, answer = request(collector, "GET", "/v1/conversations?active=true", "cw_read_000000000000_guess")
    assert status == 401


def test_a_bound_key_neither_writes_as_nor_reads_another_team(keyed):
    collector, keys, _ = keyed
    status, answer = request(collector, "POST", "/v1/events", keys["ingest_a"], [
        message("c-a", 1, "bot-a"),
        message("c-a", 2),  # no agent_id: a key of one agent stores it as that agent's
        message("c-b-forged", 1, "bot-b1"),  # team A's key writing as team B
    ])
    assert [result["status"] for result in answer["results"]] == ["accepted", "accepted", "rejected"]
    assert answer["results"][2]["reason"] == "agent_not_allowed"
    assert "bot-a" in answer["results"][2]["detail"]
    status, answer = request(collector, "POST", "/v1/events", keys["ingest_b"], [
        message("c-b", 1, "bot-b1"), message("c-b", 2, "bot-b2"),
        message("c-b-unnamed", 1),  # a project of two agents: which one is not for the collector to guess
    ])
    assert [result["status"] for result in answer["results"]] == ["accepted", "accepted", "rejected"]

    def listed(key: str) -> list[str]:
        return sorted(item["conversation_id"]
                      for item in request(collector, "GET", "/v1/conversations?active=true", key)[1]["conversations"])

    wait_for(lambda: listed(keys["read_all"]) == ["c-a", "c-b"], 15, "both conversations in the live state")
    assert listed(keys["read_a"]) == ["c-a"]
    assert listed(keys["read_b"]) == ["c-b"]
    assert request(collector, "GET", "/v1/conversations/c-a", keys["read_b"])[0] == 404
    status, detail = request(collector, "GET", "/v1/conversations/c-a", keys["read_a"])
    assert status == 200 and detail["messages"] == 2
    # counters of every team are for unbound read keys only
    assert request(collector, "GET", "/v1/live", keys["read_b"])[0] == 403
    assert request(collector, "GET", "/v1/live", keys["read_all"])[0] == 200

    def landed() -> dict:
        return {event["event_id"]: event for path in (collector.landing / "collector").rglob("events-*.jsonl")
                for event in map(json.loads, path.read_text().splitlines())}

    wait_for(lambda: "c-a-2" in landed(), 10, "the landing file finished")
    assert landed()["c-a-2"]["properties"]["agent_id"] == "bot-a"
    assert "c-b-forged-1" not in landed()


def test_keys_rotate_and_revoke_without_a_restart_and_the_file_holds_no_secret(keyed):
    collector, keys, keys_file = keyed
    new_key = create(keys_file, "--scope", "ingest", "--name", "team A widget, rotated", "--agent-id", "bot-a")
    wait_for(lambda: request(collector, "POST", "/v1/events", new_key, [message("c-r", 1, "bot-a")])[0] == 200,
             5, "the new key accepted without a restart")
    old_id = keys["ingest_a"].split("_")[2]
    revoked = keys_command(keys_file, "revoke", old_id)
    assert revoked.returncode == 0, revoked.stderr
    wait_for(lambda: request(collector, "POST", "/v1/events", keys["ingest_a"], [message("c-r", 2, "bot-a")])[0]
             == 401, 5, "the revoked key refused without a restart")
    assert request(collector, "POST", "/v1/events", new_key, [message("c-r", 3, "bot-a")])[0] == 200

    text = keys_file.read_text()
    # a key is <prefix>_<scope>_<id>_<secret>, and the secret may itself hold an underscore
    assert all(key not in text and key.split("_", 3)[3] not in text for key in [*keys.values(), new_key])
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    listing = keys_command(keys_file, "list")
    assert listing.returncode == 0 and old_id in listing.stdout and "revoked" in listing.stdout
    assert all(key not in listing.stdout for key in keys.values())


def test_keys_commands_have_help_and_clear_errors(tmp_path):
    for command in ([], ["create"], ["list"], ["revoke"], ["project"]):
        result = subprocess.run([sys.executable, "-m", "convo_warehouse.cli", "keys", *command, "--help"],
                                capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
        assert result.returncode == 0 and "Usage:" in result.stdout
    result = keys_command(tmp_path / "keys.json", "create", "--scope", "read", "--name", "x", "--project", "nope")
    assert result.returncode != 0 and "project 'nope' is not defined" in result.stderr
    result = keys_command(tmp_path / "keys.json", "revoke", "000000000000")
    assert result.returncode != 0 and "keys list" in result.stderr


def test_collector_tokens_still_work_as_full_access_keys_with_a_warning(tmp_path):
    collector = CollectorProcess(tmp_path / "landing", None, "legacy-1,legacy-2").start()
    try:
        assert request(collector, "POST", "/v1/events", "legacy-2", [message("c-l", 1)])[0] == 200
        wait_for(lambda: request(collector, "GET", "/v1/conversations/c-l", "legacy-1")[0] == 200, 15, "readable")
        assert request(collector, "GET", "/v1/conversations/c-l", "legacy-3")[0] == 401
    finally:
        collector.stop()
    log = collector.log.read_text()
    assert "CONVO_COLLECTOR_TOKENS is deprecated" in log and "legacy-1" not in log
