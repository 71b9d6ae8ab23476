"""Quoting for SQL text we build ourselves (DuckDB views and queries).

Values go in as bind parameters wherever the engine allows it; these are
for the places it does not (view definitions, file lists, identifiers).
"""

from __future__ import annotations


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
