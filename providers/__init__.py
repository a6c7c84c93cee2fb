"""Everything provider-specific: canonical types, one adapter per wire protocol, the catalog, upstream dispatch."""
