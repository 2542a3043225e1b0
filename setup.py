"""The optional C parts: the RADIUS wire code (src/radius_contracts/radius/_wire.c), batched
UDP reads and sends (src/radius_contracts/radius/_udp.c) and the MS-CHAPv2 check
(src/radius_contracts/aaa/_mschap.c).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler or the Python
headers the build goes on without them, and the daemon runs the same code in pure Python.
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "radius_contracts.radius._wire",
            sources=["src/radius_contracts/radius/_wire.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
        Extension(
            "radius_contracts.radius._udp",
            sources=["src/radius_contracts/radius/_udp.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
        Extension(
            "radius_contracts.aaa._mschap",
            sources=["src/radius_contracts/aaa/_mschap.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
    ]
)
