"""The optional C part of the RADIUS wire code (see src/radius_contracts/radius/_wire.c).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler or the Python
headers the build goes on without it, and the daemon runs the same code in pure Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "radius_contracts.radius._wire",
            sources=["src/radius_contracts/radius/_wire.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
