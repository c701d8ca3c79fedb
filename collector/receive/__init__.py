"""Receivers: bytes in, hand-off out (OTLP/HTTP on 4318, OTLP/gRPC on 4317)."""
