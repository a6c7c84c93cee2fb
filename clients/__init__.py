"""Integrations for agent clients (Claude Code, Cursor, Codex, ...). Empty until the client issues land."""
