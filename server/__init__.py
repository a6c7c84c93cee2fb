"""The Alephant gateway: app assembly, routes, the request pipeline, auth, policy, storage, CLI and config."""

__version__ = "0.1.0"
