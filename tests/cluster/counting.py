"""A simulated charger that answers every command as a compliant charger would and counts what it receives:
every CALL's unique id, across its connections, so a test can say that no command arrived twice. A socket the
gateway closes ends one connection quietly (the test reads why)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio
import trio_websocket

from gateway.ocpp.connection import Connection, Role
from tests.helpers import BOOT
from tests.responder import DEFAULT_ANSWERS


@attrs.define
class Link:
    """One connection of the charger."""

    port: int
    ws: trio_websocket.WebSocketConnection | None = None
    closed: trio.Event = attrs.field(factory=trio.Event)
    close_reason: str | None = None
    close_code: int | None = None


@attrs.define
class CountingCharger:
    cp_id: str
    received: list[tuple[str, str, dict]] = attrs.field(factory=list)  # (unique id, action, payload)

    def unique_ids(self) -> list[str]:
        return [r[0] for r in self.received]

    async def connect(self, nursery: trio.Nursery, port: int) -> Link:
        """Connect to a node, boot, and answer in the background until the socket closes."""
        link = Link(port)
        ready = trio.Event()
        nursery.start_soon(self._serve, link, ready)
        with trio.fail_after(15):
            await ready.wait()
        return link

    async def _serve(self, link: Link, ready: trio.Event) -> None:
        conn = Connection(Role.CHARGER, strict=False)
        try:
            async with trio_websocket.open_websocket("127.0.0.1", link.port, f"/ocpp/{self.cp_id}", use_ssl=False,
                                                     subprotocols=["ocpp1.6"]) as ws:
                link.ws = ws
                boot = conn.send_call("BootNotification", BOOT)
                await ws.send_message(boot.text)
                while True:
                    text = await ws.get_message()
                    frame = json.loads(text)
                    if frame[0] == 3 and frame[1] == boot.unique_id:
                        conn.forget(boot.unique_id)
                        ready.set()
                        continue
                    if frame[0] != 2:
                        continue
                    unique_id, action, payload = frame[1], frame[2], frame[3]
                    self.received.append((unique_id, action, payload))
                    answer: Any = DEFAULT_ANSWERS.get(action, {})
                    await ws.send_message(json.dumps([3, unique_id, answer]))
        except trio_websocket.ConnectionClosed as exc:
            link.close_code, link.close_reason = exc.reason.code, exc.reason.reason
        except (trio_websocket.HandshakeError, OSError) as exc:
            link.close_reason = repr(exc)
        finally:
            link.closed.set()
            ready.set()

