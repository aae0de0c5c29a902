"""The SDK says once when its key would travel over plain http to a host other than loopback
(issue 47, item 11); never for loopback, https, or without a key; never with the key in the message."""

from __future__ import annotations

import logging

from convo_capture import transport
from convo_capture.transport import HttpTransport


def test_a_key_over_plain_http_beyond_loopback_is_warned_about_once(caplog, monkeypatch):
    monkeypatch.setattr(transport, "_WARNED_PLAIN_HTTP", set())
    caplog.set_level(logging.WARNING, logger="convo_capture")
    for _ in range(3):
        HttpTransport("http://collector.example:8765", token="cw_ingest_0123456789ab_secretpart")
    HttpTransport("http://other.example", token="cw_ingest_0123456789ab_secretpart")
    warnings = [record.getMessage() for record in caplog.records if "plain http" in record.getMessage()]
    assert len(warnings) == 2
    assert "collector.example" in warnings[0] and "other.example" in warnings[1]
    assert all("secretpart" not in message for message in warnings)


def test_no_warning_for_loopback_https_or_no_key(caplog, monkeypatch):
    monkeypatch.setattr(transport, "_WARNED_PLAIN_HTTP", set())
    caplog.set_level(logging.WARNING, logger="convo_capture")
    HttpTransport("http://127.0.0.1:8765", token="k")
    HttpTransport("http://localhost:8765", token="k")
    HttpTransport("http://[::1]:8765", token="k")
    HttpTransport("https://collector.example", token="k")
    HttpTransport("http://collector.example")
    assert not [record for record in caplog.records if "plain http" in record.getMessage()]
