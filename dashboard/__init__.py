"""Server-rendered dashboard pages over the store queries."""
