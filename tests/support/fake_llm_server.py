"""A real HTTP server on 127.0.0.1 that speaks ``POST /v1/chat/completions``.

Used by the classifier tests and the benchmark so the real ``openai`` client
path (HTTP, JSON, retries, timeouts) is exercised without any network.

Behaviour per request: the next item of ``server.script`` if any (FIFO), else
``server.default(request_body)``. A behaviour is a dict:

- ``{"kind": "ok", "content": "<assistant message text>"}``
- ``{"kind": "status", "code": 429 | 500 | 503 | 401, "retry_after": 0.01}``
- ``{"kind": "sleep", "seconds": 5}`` (then answers like the default: a slow
  response, or a timeout when longer than the client's timeout)
- ``{"kind": "malformed"}``: HTTP 200 whose body is not JSON
- ``{"kind": "empty_choices"}``: HTTP 200, a JSON body without choices

``latency`` delays every answer. Run it standalone for benchmarks:
``python tests/support/fake_llm_server.py --latency 0.05`` prints its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import threading
import time
from collections.abc import Callable

from convo_warehouse.lib.classify.stages import STAGES

ALL_TRUE = json.dumps({stage: True for stage in STAGES})


def transcript_of(body: dict) -> list[dict]:
    """The transcript messages the classifier sent (the JSON after the first newline of the user turn)."""
    user_turn = [m for m in body.get("messages", []) if m.get("role") == "user"][-1]["content"]
    return json.loads(user_turn.split("\n", 1)[1])


class FakeLLMServer:
    def __init__(
        self,
        latency: float = 0.0,
        default: Callable[[dict], dict] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.default = default or (lambda body: {"kind": "ok", "content": ALL_TRUE})
        self.script: collections.deque[dict] = collections.deque()
        self.requests: list[dict] = []
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._run, name="fake-llm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._shutdown)
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------
    def _shutdown(self) -> None:
        self._server.close()
        self._loop.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        try:
            self._loop.run_forever()
        finally:
            # let handlers still sleeping (slow/timeout scripts) finish cancelling
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def _next_behaviour(self, body: dict) -> dict:
        with self._lock:
            self.requests.append(body)
            if self.script:
                return self.script.popleft()
        return self.default(body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                headers = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(length) if length else b""
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
                    await self._respond(writer, 404, {"error": {"message": "not found"}})
                    continue
                body = json.loads(raw or b"{}")
                behaviour = self._next_behaviour(body)
                if self.latency:
                    await asyncio.sleep(self.latency)
                if behaviour["kind"] == "sleep":
                    await asyncio.sleep(behaviour["seconds"])
                    behaviour = self.default(body)
                await self._answer(writer, behaviour, body)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, behaviour: dict, body: dict) -> None:
        kind = behaviour["kind"]
        if kind == "status":
            extra = {}
            if behaviour.get("retry_after") is not None:
                extra["retry-after"] = str(behaviour["retry_after"])
            await self._respond(writer, behaviour["code"], {"error": {"message": "scripted", "type": "scripted"}}, extra)
        elif kind == "malformed":
            await self._respond_raw(writer, 200, b"{this is not json", "application/json")
        elif kind == "empty_choices":
            await self._respond(writer, 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "fake", "choices": []})
        else:
            content = behaviour["content"]
            prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
            await self._respond(
                writer,
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(content) // 4,
                        "total_tokens": prompt_tokens + len(content) // 4,
                    },
                },
            )

    async def _respond(self, writer, status: int, payload: dict, extra: dict | None = None) -> None:
        await self._respond_raw(writer, status, json.dumps(payload).encode(), "application/json", extra)

    async def _respond_raw(self, writer, status: int, data: bytes, content_type: str, extra: dict | None = None) -> None:
        head = [f"HTTP/1.1 {status} X", f"content-type: {content_type}", f"content-length: {len(data)}", "connection: keep-alive"]
        head += [f"{name}: {value}" for name, value in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before every answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = FakeLLMServer(latency=args.latency, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
