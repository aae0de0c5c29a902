"""POST /api/track-interaction through a real collector on 127.0.0.1 (issue 48, item 2): a widget's call
lands one interaction_initialized event through the same durable path as /v1/events, with device,
browser and OS read from the User-Agent by ua-parser, the client address anonymised, and CORS for the
origins listed with --allowed-origin only."""

from __future__ import annotations

import http.client
import json

import pytest
from support.capture import CollectorProcess, wait_for

from convo_warehouse.collector.interaction import (
    InteractionSettings,
    anonymise,
    client_address,
    parse_user_agent,
)

TOKEN = "widget-token"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
SHOP = "https://shop.example"


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    root = tmp_path_factory.mktemp("interaction")
    process = CollectorProcess(root / "landing", None, TOKEN, "--no-live", "--rotate-seconds", "0.5",
                               "--allowed-origin", SHOP).start()
    yield process
    process.stop()


def call(collector: CollectorProcess, body, method: str = "POST", headers: dict | None = None,
         source: str | None = None) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10,
                                            source_address=(source, 0) if source else None)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, "/api/track-interaction", body=payload, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}", **(headers or {})})
        answer = connection.getresponse()
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else {}, {k.lower(): v for k, v in answer.headers.items()}
    finally:
        connection.close()


def landed(collector: CollectorProcess) -> dict:
    return {event["conversation_id"]: event for path in (collector.landing / "collector").rglob("events-*.jsonl")
            for event in map(json.loads, path.read_text().splitlines())}


def test_a_widget_call_lands_one_interaction_event_filled_by_the_server(collector):
    status, answer, _ = call(collector, {"conversation_id": "w-1", "customer_id": "cust-9",
                                         "page_url": "https://shop.example/checkout"},
                             headers={"User-Agent": IPHONE}, source="127.0.0.2")
    assert status == 200 and answer == {"status": "interaction_tracked", "conversation_id": "w-1"}
    wait_for(lambda: "w-1" in landed(collector), 10, "the landing file")
    event = landed(collector)["w-1"]
    assert event["event_type"] == "interaction_initialized" and event["user_id"] == "cust-9"
    properties = event["properties"]
    assert (properties["device"], properties["browser"], properties["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert properties["customer_ip_address"] == "127.0.0.0"  # the peer 127.0.0.2, anonymised to its /24
    assert properties["page_url"] == "https://shop.example/checkout"
    assert properties["metadata"] == {"user_agent": IPHONE, "widget_loaded": True}


def test_what_the_caller_sends_wins_and_is_checked(collector):
    status, _, _ = call(collector, {"conversation_id": "w-2", "device": "kiosk", "source": "ads", "language": "de",
                                    "environment": "development", "customer_ip_address": "2001:db8:7:1::9",
                                    "metadata": {"campaign": "spring"}}, headers={"User-Agent": WINDOWS})
    assert status == 200
    wait_for(lambda: "w-2" in landed(collector), 10, "the landing file")
    properties = landed(collector)["w-2"]["properties"]
    assert properties["device"] == "kiosk" and properties["browser"] == "Chrome" and properties["os"] == "Windows"
    assert properties["customer_ip_address"] == "2001:db8:7::"  # its /48
    assert properties["environment"] == "development" and properties["source"] == "ads"
    assert properties["metadata"]["campaign"] == "spring" and properties["metadata"]["widget_loaded"] is True
    for body, message in (({}, "conversation_id is required"),
                          ({"conversation_id": "w-3", "environment": "staging"}, "environment must be one of"),
                          ({"conversation_id": "w-3", "metadata": "x"}, "metadata must be a JSON object"),
                          ({"conversation_id": "w-3", "customer_ip_address": "not-an-ip"}, "no IP address"),
                          ({"conversation_id": "c" * 300}, "at most 256")):
        status, answer, _ = call(collector, body)
        assert status == 400 and message in answer["error"], (body, answer)


def test_cors_preflight_for_listed_origins_only(collector):
    status, _, headers = call(collector, None, method="OPTIONS",
                              headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 204 and headers["access-control-allow-origin"] == SHOP
    assert "POST" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"].lower()
    status, answer, headers = call(collector, {"conversation_id": "w-cors"}, headers={"Origin": SHOP})
    assert status == 200 and headers["access-control-allow-origin"] == SHOP
    status, _, headers = call(collector, None, method="OPTIONS", headers={"Origin": "https://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, answer, _ = call(collector, {"conversation_id": "w-evil"}, headers={"Origin": "https://evil.example"})
    assert status == 403 and "origin" in answer["error"]


def test_a_read_key_cannot_track(tmp_path):
    import subprocess
    import sys

    from support.capture import REPO_ROOT

    keys_file = tmp_path / "keys.json"
    read_key = subprocess.run([sys.executable, "-m", "convo_warehouse.cli", "keys", "create", "--scope", "read",
                               "--name", "dash", "--keys-file", str(keys_file)], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60).stdout.strip()
    collector = CollectorProcess(tmp_path / "landing", None, "", "--no-live", keys_file=keys_file).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
        connection.request("POST", "/api/track-interaction", body=b'{"conversation_id": "w-r"}',
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {read_key}"})
        answer = connection.getresponse()
        assert answer.status == 403 and b"ingest scope" in answer.read()
    finally:
        collector.stop()


@pytest.mark.parametrize(("user_agent", "expected"), [
    (IPHONE, ("mobile", "Mobile Safari", "iOS")),
    (WINDOWS, ("desktop", "Chrome", "Windows")),
    (ANDROID_TABLET, ("tablet", "Chrome", "Android")),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", (None, "Googlebot", None)),
])
def test_device_browser_and_os_come_from_ua_parser(user_agent, expected):
    assert parse_user_agent(user_agent) == expected


def test_a_forwarded_address_is_believed_from_trusted_proxies_only():
    settings = InteractionSettings(trusted_proxies=InteractionSettings.networks(["10.0.0.0/8"]))
    assert client_address("10.1.2.3", "198.51.100.7, 10.9.9.9", settings) == "198.51.100.7"  # past our proxies
    assert client_address("10.1.2.3", "198.51.100.7", settings) == "198.51.100.7"
    assert client_address("10.1.2.3", "203.0.113.50, 198.51.100.7, 10.2.2.2", settings) == "198.51.100.7"
    assert client_address("203.0.113.9", "198.51.100.7", settings) == "203.0.113.9"  # not our proxy: ignored
    assert anonymise("198.51.100.77") == "198.51.100.0"
