"""Alerts: rules (pure), their inputs from the ledger, state, the scheduler and notifiers.

rules.py decides (aggregates and config in, alert states and notifications out); inputs.py
is the one place that reads the aggregates from the database; store.py keeps the states
and their history; runner.py evaluates on an interval; notify.py delivers, off the ingest
path, with retries.
"""
