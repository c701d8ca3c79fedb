"""breakeven collector: OTLP in, one priced record per LLM call out."""

__version__ = "0.1.0"
