"""Stream -> table and property -> column names, for every destination, in one place.

Each destination dialect is a ``NamingRules`` object; the algorithm is shared.
A generated name is made *legal* in four steps, always in this order:

1. characters the dialect does not allow are replaced (a run of them becomes
   one ``_``), then the dialect's case folding is applied;
2. a leading character the dialect forbids (``_`` or a digit) gets the
   dialect's ``lead_prefix`` (Oracle's rules add one; DuckDB allows both);
3. a reserved word gets a trailing ``_``;
4. a name longer than the dialect's limit (in UTF-8 bytes) is cut and ends
   with ``_`` plus 8 hex digits of the sha256 of the *original* name, so two
   long names that share a prefix stay apart.

Collisions (two sources whose legal names are equal, compared the way the
dialect compares identifiers) are resolved deterministically: sources are
named in *first-seen order* (streams in manifest order; a stream's properties
in the order they first appear across its schemas, after the metadata
columns), and a later source whose name is taken gets ``_`` plus 8 hex digits
of its original name's sha256. Because the manifest is append-only, a name
once given never changes when new streams or properties arrive later. An
explicit mapping (``table_mappings``, ``column_mappings``) always wins, must
already be legal, and two mappings to one name are a ConfigError.

DuckDB rules (``DUCKDB``): letters (any script), digits and ``_`` are kept,
case is kept; anything else becomes ``_``. So stream ``public-users`` is
table ``public_users``, ``Café Orders`` is ``Café_Orders`` and ``ünï-表`` is
``ünï_表``. Names may start with ``_`` or a digit, so the ``_sdc_*``
metadata columns keep their names. Every identifier is double-quoted in SQL,
so reserved words need no change. DuckDB compares identifiers without
regard to case, so properties ``id`` and ``ID`` collide: the one seen first
keeps its name, the other becomes e.g. ``ID_3f9a0c21``. Names are limited
to 255 bytes here (DuckDB has no limit; other tools do).

A mapping value may name a schema too: ``{"public-users": "crm.users"}``
puts the table in schema ``crm``; otherwise ``default_target_schema`` is
used (DuckDB: ``main`` when empty).
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from .errors import ConfigError

# The engine's own tables: reserved in every dialect's table namespace so
# that no stream can be mapped onto them.
LEDGER_TABLE = "_spool_ledger"
STAGE_PREFIX = "_spool_stage_"


class CaseFold(enum.Enum):
    KEEP = "keep"
    UPPER = "upper"
    LOWER = "lower"

    def apply(self, name: str) -> str:
        if self is CaseFold.UPPER:
            return name.upper()
        if self is CaseFold.LOWER:
            return name.lower()
        return name


def _word_char(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def short_hash(original: str) -> str:
    return hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]


@dataclass(frozen=True)
class NamingRules:
    dialect: str
    max_bytes: int
    fold: CaseFold = CaseFold.KEEP
    case_insensitive: bool = True  # do Foo and foo name the same object?
    reserved: frozenset[str] = frozenset()  # compared after upper-casing
    allowed_char: Callable[[str], bool] = _word_char
    leading_underscore: bool = True
    leading_digit: bool = True
    lead_prefix: str = "x_"  # prepended when the first character is not allowed there
    quote_char: str = '"'
    ledger_table: str = LEDGER_TABLE
    stage_prefix: str = STAGE_PREFIX

    # --- single names ---------------------------------------------------
    def key(self, name: str) -> str:
        """How the dialect compares two identifiers (collision detection)."""
        return name.casefold() if self.case_insensitive else name

    def quote(self, name: str) -> str:
        """The identifier as SQL text. The only way names enter SQL."""
        if not name or "\x00" in name:
            raise ValueError(f"not an identifier: {name!r}")
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def qualified(self, schema: str | None, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}" if schema else self.quote(name)

    def legalize(self, original: str) -> str:
        """The legal form of ``original`` (steps 1-4 of the module docstring)."""
        name = "".join(ch if self.allowed_char(ch) else "\x00" for ch in original)
        name = re.sub("\x00+", "_", name)
        name = self.fold.apply(name)
        if not name.strip("_"):
            # Nothing readable survived ("", "---", "!!"): use the hash alone.
            name = self.fold.apply("c_" + short_hash(original))
        if (name[0] == "_" and not self.leading_underscore) or (name[0].isdigit() and not self.leading_digit):
            name = self.fold.apply(self.lead_prefix) + (name.lstrip("_") if not self.leading_underscore else name)
        if name.upper() in self.reserved:
            name += "_"
        return self._fit(name, original)

    def _fit(self, name: str, original: str) -> str:
        if len(name.encode("utf-8")) <= self.max_bytes:
            return name
        suffix = self.fold.apply("_" + short_hash(original))
        budget = self.max_bytes - len(suffix.encode("utf-8"))
        cut = name.encode("utf-8")[:budget].decode("utf-8", "ignore")
        return cut + suffix

    def with_hash(self, legal: str, original: str) -> str:
        """A collision's alternative: the legal name plus a hash of the original."""
        suffix = self.fold.apply("_" + short_hash(original))
        budget = self.max_bytes - len(suffix.encode("utf-8"))
        cut = legal.encode("utf-8")[:budget].decode("utf-8", "ignore")
        return cut + suffix

    def check_explicit(self, name: str, what: str) -> str:
        """An explicitly mapped name must already be legal (after case folding)."""
        folded = self.fold.apply(name)
        if not name or self.legalize(name) != folded:
            legal = self.legalize(name) if name else "(a non-empty name)"
            raise ConfigError(
                f"{what}: {name!r} is not a legal {self.dialect} name",
                hint=f"use letters, digits and _ only, at most {self.max_bytes} bytes, e.g. {legal!r}",
            )
        return folded


DUCKDB = NamingRules(dialect="DuckDB", max_bytes=255)


# --- name sets -----------------------------------------------------------
@dataclass
class NameAssigner:
    """Gives each source name a unique legal name, in first-seen order."""

    rules: NamingRules
    what: str  # "table" or "column of stream 'x'", for messages
    taken: dict[str, str] = field(default_factory=dict)  # key -> source that holds it

    def reserve(self, name: str, source: str) -> None:
        self.taken[self.rules.key(name)] = source

    def claim_explicit(self, source: str, name: str) -> str:
        holder = self.taken.get(self.rules.key(name))
        if holder is not None and holder != source:
            raise ConfigError(
                f"{self.what}: {holder!r} and {source!r} are both mapped to {name!r}",
                hint="give each one its own name in table_mappings / column_mappings",
            )
        self.reserve(name, source)
        return name

    def assign(self, source: str, legal: str | None = None) -> str:
        legal = legal or self.rules.legalize(source)
        if self.rules.key(legal) in self.taken:
            alternative = self.rules.with_hash(legal, source)
            if self.rules.key(alternative) in self.taken:
                raise ConfigError(
                    f"{self.what}: cannot find a free name for {source!r} ({legal!r} and {alternative!r} are taken)",
                    hint="map it explicitly in table_mappings / column_mappings",
                )
            legal = alternative
        self.reserve(legal, source)
        return legal


@dataclass(frozen=True)
class TableRef:
    schema: str | None  # None: the destination's default schema
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def table_names(
    streams: Iterable[str],
    rules: NamingRules,
    *,
    default_schema: str = "",
    mappings: Mapping[str, str] | None = None,
) -> dict[str, TableRef]:
    """Stream name -> table, for streams in manifest (first-seen) order."""
    mappings = mappings or {}
    default = rules.check_explicit(default_schema, "default_target_schema") if default_schema else None
    assigners: dict[str | None, NameAssigner] = {}

    def assigner(schema: str | None) -> NameAssigner:
        if schema not in assigners:
            a = NameAssigner(rules, f"table in schema {schema or '(default)'}")
            a.reserve(rules.ledger_table, "(the load ledger)")
            assigners[schema] = a
        return assigners[schema]

    streams = list(streams)
    out: dict[str, TableRef] = {}
    # Explicit mappings first, so that generated names step aside for them.
    for stream in streams:
        if stream in mappings:
            target = mappings[stream]
            if not isinstance(target, str):
                raise ConfigError(f"table_mappings[{stream!r}] must be a string, got {target!r}")
            schema_part, dot, table_part = target.partition(".")
            schema = rules.check_explicit(schema_part, f"table_mappings[{stream!r}] schema") if dot else default
            name = rules.check_explicit(table_part if dot else target, f"table_mappings[{stream!r}]")
            if name.startswith(rules.stage_prefix):
                raise ConfigError(f"table_mappings[{stream!r}]: names starting {rules.stage_prefix!r} are reserved")
            out[stream] = TableRef(schema, assigner(schema).claim_explicit(stream, name))
    for stream in streams:
        if stream not in out:
            legal = rules.legalize(stream)
            if rules.key(legal).startswith(rules.key(rules.stage_prefix)):
                legal = rules.legalize("t" + legal)  # never look like a staging table the sweep drops
            out[stream] = TableRef(default, assigner(default).assign(stream, legal))
    return out


def column_names(
    stream: str,
    sources: Iterable[str],
    rules: NamingRules,
    *,
    reserved_first: Iterable[str] = (),
    mappings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Source (property or metadata) name -> column name for one stream.

    ``reserved_first`` (the metadata columns) are named before everything
    else, so a property can never take a metadata column's name; ``sources``
    must be in first-seen order.
    """
    mappings = mappings or {}
    if not isinstance(mappings, Mapping):
        raise ConfigError(f"column_mappings[{stream!r}] must be an object of property -> column name")
    a = NameAssigner(rules, f"column of stream {stream!r}")
    out: dict[str, str] = {}
    ordered = list(dict.fromkeys([*reserved_first, *sources]))
    for src in ordered:
        if src in mappings:
            target = mappings[src]
            if not isinstance(target, str):
                raise ConfigError(f"column_mappings[{stream!r}][{src!r}] must be a string, got {target!r}")
            out[src] = a.claim_explicit(src, rules.check_explicit(target, f"column_mappings[{stream!r}][{src!r}]"))
    for src in ordered:
        if src not in out:
            out[src] = a.assign(src)
    return out


# --- Oracle ------------------------------------------------------------------
# Kept apart from the shared algorithm above: Oracle only needs a different
# ``legalize`` (ASCII, upper case, no leading ``_``) and its reserved words.
#
# Oracle rules (``oracle_rules(max_bytes)``; the destination passes the
# server's ``max_identifier_length``: 128 bytes, or 30 before 12.2):
#
# 1. letters are folded to ASCII by dropping accents (Unicode NFKD without
#    combining marks: ``Café`` -> ``Cafe``); every other character outside
#    ``A-Z a-z 0-9 _`` (``$`` and ``#`` too, which Oracle allows but tools
#    trip over) becomes ``_``, a run of them one ``_``; then upper case;
# 2. leading ``_`` are removed, so ``_sdc_sequence`` is ``SDC_SEQUENCE``; a
#    name that then starts with a digit gets ``X_`` (``2024 sales`` ->
#    ``X_2024_SALES``); a name with nothing left (``名前``, ``---``) is ``C_``
#    plus 8 hex digits of its sha256;
# 3. a reserved word (``ORACLE_RESERVED``: ``DATE``, ``LEVEL``, ``SIZE``...)
#    gets a trailing ``_``, so every name works unquoted too;
# 4. longer than the limit: cut, plus ``_`` and 8 hex digits of the sha256 of
#    the original (as for every dialect).
#
# Names are still always double-quoted in generated SQL. Collisions
# (``id`` and ``ID``, or a property ``sdc_sequence`` next to the metadata
# column ``_sdc_sequence``) are resolved by the shared first-seen rule above.
# The engine's tables: ``SPOOL_LEDGER`` and staging tables ``SPOOL_STAGE_*``.

# Oracle SQL Language Reference, "Oracle SQL Reserved Words" (19c, unchanged in 23ai).
ORACLE_RESERVED = frozenset(
    """ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN COLUMN_VALUE
    COMMENT COMPRESS CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC DISTINCT DROP ELSE
    EXCLUSIVE EXISTS FILE FLOAT FOR FROM GRANT GROUP HAVING IDENTIFIED IMMEDIATE IN INCREMENT INDEX
    INITIAL INSERT INTEGER INTERSECT INTO IS LEVEL LIKE LOCK LONG MAXEXTENTS MINUS MLSLABEL MODE
    MODIFY NESTED_TABLE_ID NOAUDIT NOCOMPRESS NOT NOWAIT NULL NUMBER OF OFFLINE ON ONLINE OPTION OR
    ORDER PCTFREE PRIOR PUBLIC RAW RENAME RESOURCE REVOKE ROW ROWID ROWNUM ROWS SELECT SESSION SET
    SHARE SIZE SMALLINT START SUCCESSFUL SYNONYM SYSDATE TABLE THEN TO TRIGGER UID UNION UNIQUE
    UPDATE USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW WHENEVER WHERE WITH""".split()
)
ORACLE_LEDGER_TABLE = "SPOOL_LEDGER"
ORACLE_STAGE_PREFIX = "SPOOL_STAGE_"
_ORACLE_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def _ascii_fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class OracleNamingRules(NamingRules):
    def legalize(self, original: str) -> str:
        name = _ORACLE_UNSAFE.sub("_", _ascii_fold(original)).upper().lstrip("_")
        if not name.strip("_"):
            name = "C_" + short_hash(original).upper()
        if name[0].isdigit():
            name = "X_" + name
        if name in self.reserved:
            name += "_"
        return self._fit(name, original)


def oracle_rules(max_bytes: int = 128) -> NamingRules:
    """Oracle naming for a server whose ``max_identifier_length`` is ``max_bytes``."""
    return OracleNamingRules(
        dialect="Oracle",
        max_bytes=max_bytes,
        fold=CaseFold.UPPER,
        reserved=ORACLE_RESERVED,
        allowed_char=lambda ch: ch == "_" or (ch.isascii() and ch.isalnum()),
        leading_underscore=False,
        leading_digit=False,
        lead_prefix="X_",
        ledger_table=ORACLE_LEDGER_TABLE,
        stage_prefix=ORACLE_STAGE_PREFIX,
    )


ORACLE = oracle_rules(128)
ORACLE_30 = oracle_rules(30)
