"""Build configuration that pyproject.toml cannot express: the optional C fan-out loop.

``sfu._fanout`` is optional: without a C compiler the install still succeeds and the SFU runs
its pure-Python loop (``sfu.lane.FAST_PATH`` says which one is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sfu._fanout",
            sources=["sfu/_fanout.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
            optional=True,
        )
    ]
)
