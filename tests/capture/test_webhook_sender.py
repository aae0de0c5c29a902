"""The intervention webhook's sender threads (collector/webhook.py), against a slow local receiver."""

from __future__ import annotations

import time

from support.live import WebhookReceiver

from convo_warehouse.collector.webhook import WebhookSender, WebhookSettings


def arrivals(receiver: WebhookReceiver) -> list[tuple[float, str]]:
    """(arrival time, idempotency key) of every request the receiver got."""
    return [(request["at"], request["headers"]["Idempotency-Key"]) for request in receiver.requests]


def test_a_slow_receiver_does_not_hold_every_later_intervention_back():
    receiver = WebhookReceiver(delay=0.5)
    sender = WebhookSender(WebhookSettings(url=receiver.url, senders=4))
    try:
        started = time.time()
        for number in range(4):
            sender.submit({"idempotency_key": f"k{number}", "rule": "r"})
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        # one sender would deliver the 4th after 3 answers of 0.5 s (1.5 s); four deliver them
        # together (the bound leaves a busy machine room, and still fails for one sender)
        assert sorted(key for _, key in arrivals(receiver)) == ["k0", "k1", "k2", "k3"]
        assert max(at for at, _ in arrivals(receiver)) - started < 1.0
    finally:
        sender.close(timeout=5)
        receiver.close()
    assert sender.counts == {"sent": 4, "failed": 0, "retried": 0, "dropped": 0}


def test_every_payload_is_sent_once_by_the_sender_threads():
    receiver = WebhookReceiver()
    sender = WebhookSender(WebhookSettings(url=receiver.url, senders=3))
    try:
        for number in range(60):
            sender.submit({"idempotency_key": f"k{number}", "rule": "r"})
        sender.close(timeout=10)
    finally:
        receiver.close()
    assert sorted(key for _, key in arrivals(receiver)) == sorted(f"k{number}" for number in range(60))
    assert sender.counts["sent"] == 60
