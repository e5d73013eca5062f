"""An MCP server that misbehaves on request, for rswe's tests.

python misbehaving.py [ok|never-answers|fails-at-start]

Writes its pid to `<MARKER_DIR>/started` once it runs. Tools: echo, env (the environment's variable names), crash (exits mid-call), hang
(never answers; writes `<MARKER_DIR>/hang-started` and, when the call is cancelled,
`<MARKER_DIR>/hang-cancelled`), grow (adds a tool and says the list changed).
"""

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("misbehaving", version="1.0")


def mark(name: str) -> None:
    directory = os.environ.get("MARKER_DIR")
    if directory:
        with open(os.path.join(directory, name), "w") as file:
            file.write(str(os.getpid()))


@server.tool()
def echo(text: str) -> str:
    """Says the text back."""
    return f"echo: {text}"


@server.tool()
def env() -> str:
    """The names and values of the environment variables this server sees."""
    return "\n".join(f"{name}={value}" for name, value in sorted(os.environ.items()))


@server.tool()
def crash() -> str:
    """Exits in the middle of the call."""
    print("about to crash: out of cheese", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def hang() -> str:
    """Never answers."""
    mark("hang-started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        mark("hang-cancelled")
        raise
    return "woke up"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Adds a tool with the given name."""

    def added() -> str:
        return f"{name} ran"

    server.add_tool(added, name=name, description="A tool added while the server ran.")
    await ctx.request_context.session.send_tool_list_changed()
    return f"added {name}"


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if mode == "never-answers":
        print("starting very slowly", file=sys.stderr, flush=True)
        time.sleep(3600)
    elif mode == "fails-at-start":
        print("cannot open the database: permission denied", file=sys.stderr, flush=True)
        sys.exit(2)
    mark("started")
    server.run()
