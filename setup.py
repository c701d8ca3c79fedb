"""The optional native parts: the decoder (collector/_otlp.c) and the seen-trace filter's
hot loops (collector/_bloom.c); everything else is in pyproject.toml.

optional=True: without a C compiler the build says so and goes on; collector.decode keeps
to the pure-Python (upb) path and collector.tracecache to its Python loops.
"""

import sys

from setuptools import Extension, setup

# The decoder reads fixed64 fields with memcpy: little-endian hosts only (x86-64, arm64).
native = sys.byteorder == "little" and sys.implementation.name == "cpython"

setup(
    ext_modules=[
        Extension("collector._otlp", ["collector/_otlp.c"], optional=True),
        Extension("collector._bloom", ["collector/_bloom.c"], optional=True),
    ]
    if native
    else [],
)
