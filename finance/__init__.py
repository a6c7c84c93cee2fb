"""Money (integer nano-USD), pricing and, later, the ledger and payments."""
