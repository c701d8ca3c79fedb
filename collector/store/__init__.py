"""The ledger: schema, engine, writer and queries (DuckDB embedded, or PostgreSQL)."""
