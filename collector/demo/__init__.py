"""`breakeven demo`: a month of hybrid LLM traffic, sent through the real OTLP path into a fresh
database, with the config that prices it, so every dashboard page has something to show.

The fleet and its calls are in traffic.py; spans.py and metrics.py turn them into OTLP/HTTP
protobuf bodies (spans in the dialects real emitters speak, GPU utilization as the boxes report
it), plan.py lays out the month, send.py POSTs the bodies, config.py renders breakeven.toml,
and command.py is the subcommand.

How they travel: bodies built with opentelemetry-proto (a runtime dependency already) and
POSTed with the standard library to a collector started in-process on free loopback ports.
That is the receiver, decoder, normalizer, merge, pricer and writer a real exporter reaches,
without making the OTel SDK's exporter (and `requests`) a runtime dependency for one command,
and with every span's timestamp set exactly.
"""

from breakeven.collector.demo.command import add_parser, run

__all__ = ["add_parser", "run"]
