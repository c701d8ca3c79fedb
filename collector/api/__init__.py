"""HTTP routers: the money API, calls, health, admin, alerts, metrics; report errors become 4xx here."""
