"""The MCP surface over ``server`` services: the gateway's governed path as MCP tools and resources.

    mcp_server   the MCPServer: tool and resource definitions, thin typed functions over a typed context
    mount        /mcp in the gateway (Streamable HTTP, stateless, JSON), its auth guard and metadata routes
    stdio        ``alephant mcp``: the same server over stdio, with the gateway's services in-process

Nothing imports this package: the gateway finds it through the ``alephant.mounts`` and ``alephant.commands``
entry points.
"""
