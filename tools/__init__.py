"""The MCP surface (tools, resources, prompts) over ``server`` services. Empty until the MCP issue lands."""
