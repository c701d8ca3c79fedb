"""Spans -> one record per LLM call: merge, cross-trace and failure links, the trace cache, the pipeline."""
