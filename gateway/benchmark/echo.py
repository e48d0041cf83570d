"""The ceiling: a bare trio-websocket server that answers every CALL with a fixed CALLRESULT."""

from __future__ import annotations

import sys

import trio
import trio_websocket


async def serve(port: int) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept(subprotocol="ocpp1.6")
        try:
            while True:
                text = await ws.get_message()
                start = text.index('"') + 1
                uid = text[start:text.index('"', start)]
                await ws.send_message(f'[3,"{uid}",{{}}]')
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", port, None)
        print(server.port, flush=True)


if __name__ == "__main__":
    trio.run(serve, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
