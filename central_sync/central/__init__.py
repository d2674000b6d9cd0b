"""The central ledger service (DESIGN.md, "The central ledger service")."""
