"""The Python floor: the barest aiohttp proxy (one server, one pooled ClientSession), no governance at all.

python -m bench.floor_proxy --port 9001 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web


def build(upstream: str) -> web.Application:
    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        yield
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        async with request.app["session"].post(upstream + request.path, data=body, headers=headers) as reply:
            if reply.content_type != "text/event-stream":
                return web.Response(body=await reply.read(), status=reply.status, content_type=reply.content_type)
            out = web.StreamResponse(status=reply.status, headers={"Content-Type": "text/event-stream"})
            await out.prepare(request)
            async for data in reply.content.iter_any():
                await out.write(data)
            await out.write_eof()
            return out

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", forward)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--upstream", default="http://127.0.0.1:9000")
    args = parser.parse_args()
    web.run_app(
        build(args.upstream),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )
