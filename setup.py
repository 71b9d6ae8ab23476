"""Ingest's hot path in C; everything else about the package is in pyproject.toml.

``spool_target/spool/_blockdecode.c`` types blocks of plain RECORD lines
straight into Arrow buffers (``spool/records.py`` says how it is used). The
extension is optional: where no C compiler is at hand the install still
succeeds, and ingest takes the pure-Python path, which stores the same
values more slowly. ``spool-target --version`` says which one is in use.
(Declared here rather than in pyproject.toml, where setuptools still calls
``ext-modules`` experimental and warns on every install.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spool_target.spool._blockdecode",
            ["spool_target/spool/_blockdecode.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-Wall"],
        )
    ]
)
