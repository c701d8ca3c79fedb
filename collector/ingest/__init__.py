"""Receive and decode: OTLP bytes in (HTTP on 4318, gRPC on 4317), the writer's work out."""
