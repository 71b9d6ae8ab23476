"""``load_strategy: object-storage``: Oracle reads each segment's Parquet itself.

For every pending segment of a unit, ``DBMS_CLOUD.COPY_DATA`` fills the unit's
staging table straight from the object store; then the same INSERT ... SELECT
or MERGE as for the other strategies, plus the ledger rows, commit in one
transaction. The loader only plans, measures text (to size VARCHAR2 columns
first) and keeps the ledger; the rows never pass through it.

Why COPY_DATA may only ever fill staging: it runs DDL (it creates an external
table over the files) and commits on its own, like a direct path load. Rows it
wrote into the real table could never share a transaction with their ledger
rows, and a crash in between would load them twice. Into staging it is
harmless: staging is dropped and re-created at the start of every attempt of
a unit (``unit.UnitBuilder._staged_run``), so a crash between COPY_DATA and
the unit's COMMIT leaves only a staging table that the next attempt (or
``load --resume``'s sweep) drops; the table and the ledger never saw the rows.

Oracle documentation used here (the "DBMS_CLOUD Package" chapters of the
Autonomous Database docs; the same package is installed on 19c and later,
PL/SQL Packages and Types Reference 19c, "DBMS_CLOUD", and My Oracle Support
Doc ID 2748362.1):

- COPY_DATA(table_name, credential_name, file_uri_list, schema_name,
  field_list, format), and GRANT EXECUTE ON DBMS_CLOUD for users other than
  ADMIN: "DBMS_CLOUD Subprograms and REST APIs"
  (https://docs.oracle.com/iaas/autonomous-database-serverless/doc/dbms-cloud-subprograms.html).
  field_list describes the fields of text files; Parquet brings its own
  columns, so it is left out.
- format ``{"type": "parquet"}``: "DBMS_CLOUD Package Format Options for Avro,
  ORC, or Parquet"
  (https://docs.oracle.com/en/cloud/paas/autonomous-database/adbsa/format-options-parquet-avro.html).
  Its ``schema`` option (first / all) only matters when DBMS_CLOUD derives the
  column list itself ("If column_list is specified, then the schema value ...
  is ignored"); COPY_DATA loads into an existing table, whose columns are the
  list, so it is not set.
- Columns are matched by name, after "DBMS_CLOUD Package Avro, ORC, and Parquet
  to Oracle Column Name Mapping"
  (https://docs.oracle.com/en/cloud/paas/autonomous-data-warehouse-cloud/user/avro-parquet-column-name.html):
  a plain Parquet name is upper-cased (``part`` -> PART); any other (blanks,
  a leading digit or underscore) keeps its exact spelling. So each staging
  column is named as that rule names its Parquet column
  (``stage_column_name``), and the INSERT/MERGE maps it to the table's column.
- Types: INT64 -> NUMBER(19), BOOLEAN -> NUMBER(1), DOUBLE -> BINARY_DOUBLE,
  DATE -> DATE, TIMESTAMP_MICROS -> TIMESTAMP(6), STRING -> VARCHAR2. Read in
  "DBMS_CLOUD Package Avro to Oracle Data Type Mapping"
  (https://docs.oracle.com/en/cloud/paas/autonomous-data-warehouse-cloud/user/data-type-mapping-avro.html),
  whose Parquet twin lists the same physical types, and in "DBMS_CLOUD Package
  Oracle Data Type to Parquet Mapping" (TIMESTAMP(6) <-> TIMESTAMP_MICROS_UTC,
  https://docs.oracle.com/en/cloud/paas/atp-cloud/atpug/data-type-mapping-oracle-parquet.html).
  Only a live run can confirm them: tests/test_oracle_live.py compares what
  lands with what the tap sent.
- URIs must be https ("DBMS_CLOUD URI Formats",
  https://docs.oracle.com/en/cloud/paas/atp-cloud/atpgs/file-uri-formats.html):
  ``segment_url``.

How our Parquet columns (``schema.ARROW_TYPES``) land exactly (I8):

==========  ===============  ================  ==========================================
logical     Parquet          staging column    into the table
==========  ===============  ================  ==========================================
integer     INT64            NUMBER(19)        as is; TO_CHAR for text columns
decimal     STRING (exact    VARCHAR2(n BYTE)  TO_NUMBER(...), as the insert strategy
            JSON text)                         binds it (the session fixes '.' as the
                                               decimal character: sql.SESSION_SETUP)
number      DOUBLE           BINARY_DOUBLE     only into BINARY_DOUBLE (prefer_float):
                                               the double itself. Into NUMBER the insert
                                               strategy stores the double's shortest
                                               round-trip text; no documented Oracle
                                               conversion promises that, so such units
                                               load with the insert strategy (a warning)
string,     STRING           VARCHAR2(n BYTE)  as is ('' is NULL in Oracle either way)
time, json
timestamp   TIMESTAMP_MICROS TIMESTAMP(6)      FROM_TZ(..., 'UTC') for TIME ZONE columns.
            (UTC)                              The session runs in UTC (SESSION_SETUP),
                                               so no zone shift can happen in COPY_DATA
date        DATE             DATE              as is
boolean     BOOLEAN          NUMBER(1)         as is; TRUE/FALSE for BOOLEAN (23ai)
==========  ===============  ================  ==========================================

n is the server's VARCHAR2 limit; a unit with longer text (a CLOB value), with
a column whose logical type changes within the unit, with '' in a key that is
matched (those records go to the rejects file, which needs the loader to read
them) or with names the mapping above cannot keep apart loads with the insert
strategy instead, with a warning once per stream -- as direct path does.

After each COPY_DATA the staging rows are counted: a copy that skipped rows
(a file other than the segment, rejected rows) fails the unit before anything
commits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlsplit

import pyarrow.parquet as pq

from ...errors import ConfigError, DestinationError
from ...storage.location import is_remote, parse_location
from ..destination import LoadUnit, SegmentStep
from ..options import OracleOptions
from .binds import empty_key_mask
from .sql import TIMESTAMP_TEXT_SQL, Statement
from .types import OracleType

STRATEGY = "object-storage"
PARQUET_FORMAT = '{"type": "parquet"}'

# The call, with every value bound. A PL/SQL block: COPY_DATA is a procedure.
COPY_DATA = (
    "BEGIN\n"
    "  DBMS_CLOUD.COPY_DATA(\n"
    "    table_name => :1,\n"
    "    credential_name => :2,\n"
    "    file_uri_list => :3,\n"
    "    schema_name => :4,\n"
    f"    format => '{PARQUET_FORMAT}'\n"
    "  );\n"
    "END;"
)

# check: DBMS_CLOUD is usable when the package shows in ALL_OBJECTS, which lists the objects
# the user may use (Oracle Database Reference, ALL_OBJECTS): EXECUTE on it, or EXECUTE ANY
# PROCEDURE. A public synonym alone (type SYNONYM) does not count.
PACKAGE_VISIBLE = (
    "SELECT OWNER FROM ALL_OBJECTS WHERE OBJECT_NAME = 'DBMS_CLOUD' AND OBJECT_TYPE = 'PACKAGE'"
)
# Credentials made by DBMS_CLOUD.CREATE_CREDENTIAL belong to the schema that made them and are
# listed in USER_CREDENTIALS (Oracle Database Reference, USER_CREDENTIALS / ALL_CREDENTIALS:
# OWNER, CREDENTIAL_NAME, USERNAME, ENABLED...). No column holds the secret.
CREDENTIAL_ROW = "SELECT USERNAME, ENABLED FROM USER_CREDENTIALS WHERE CREDENTIAL_NAME = :1"


# ---- where Oracle reads a segment ------------------------------------------------------------
def segment_url(spool_url: str, item: str, storage_options: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> str:
    """The https URL DBMS_CLOUD reads segment ``item`` (its path relative to the spool root) from,
    for a spool at ``spool_url`` (``s3://``, ``az://``, ``gs://``). DBMS_CLOUD takes https only
    ("DBMS_CLOUD URI Formats"):

    - AWS S3: virtual-hosted ``https://BUCKET.s3.REGION.amazonaws.com/KEY``;
    - an S3-compatible store (``endpoint`` in storage_options, or AWS_ENDPOINT_URL[_S3]):
      OCI's S3 endpoint ``https://NS.compat.objectstorage.REGION.oraclecloud.com`` becomes the
      OCI native URI ``https://objectstorage.REGION.oraclecloud.com/n/NS/b/BUCKET/o/KEY``;
      any other endpoint is used path-style, ``ENDPOINT/BUCKET/KEY`` (or virtual-hosted,
      ``https://BUCKET.HOST/KEY``, with ``path_style: false``);
    - Azure Blob: ``https://ACCOUNT.blob.core.windows.net/CONTAINER/KEY`` (account from
      storage_options ``account_name`` or AZURE_STORAGE_ACCOUNT_NAME), or ENDPOINT/CONTAINER/KEY;
    - Google Cloud Storage: ``https://BUCKET.storage.googleapis.com/KEY``.
    """
    return _object_url(spool_url, item.strip("/"), storage_options, env)


def prefix_url(spool_url: str, storage_options: Mapping[str, Any] | None = None,
               env: Mapping[str, str] | None = None) -> str:
    """The spool's own location (ending in ``/``), for DBMS_CLOUD.LIST_OBJECTS in ``check``."""
    return _object_url(spool_url, "", storage_options, env).rstrip("/") + "/"


def _object_url(spool_url: str, item: str, storage_options: Mapping[str, Any] | None,
                env: Mapping[str, str] | None) -> str:
    env = os.environ if env is None else env
    loc = parse_location(spool_url, storage_options, env)  # a StorageConfigError is a ConfigError (exit 2)
    if loc.scheme == "file":
        raise ConfigError(f"{spool_url!r} is not an object storage URL", hint="use s3://, az:// or gs://")
    key = quote("/".join(p for p in (loc.prefix, item) if p), safe="/-_.~")
    bucket = loc.bucket
    endpoint = str(loc.options.get("endpoint") or "").rstrip("/")
    if loc.scheme == "s3":
        if not endpoint:
            return f"https://{bucket}.s3.{loc.options.get('region') or 'us-east-1'}.amazonaws.com/{key}"
        host = urlsplit(endpoint).netloc
        oci = re.fullmatch(r"([a-z0-9-]+)\.compat\.objectstorage\.([a-z0-9-]+)\.oraclecloud\.com", host)
        if oci:
            namespace, region = oci.groups()
            return f"https://objectstorage.{region}.oraclecloud.com/n/{namespace}/b/{bucket}/o/{key}"
        if str(loc.options.get("path_style", "true")).lower() in ("false", "0", "no"):
            return f"https://{bucket}.{host}/{key}"
        return f"{endpoint}/{bucket}/{key}"
    if loc.scheme == "az":
        if endpoint:
            return f"{endpoint}/{bucket}/{key}"
        account = loc.options.get("account_name") or env.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not account:
            raise ConfigError(
                f"cannot name the Azure storage account of {spool_url}",
                hint="set storage_options account_name, or AZURE_STORAGE_ACCOUNT_NAME",
            )
        return f"https://{account}.blob.core.windows.net/{bucket}/{key}"
    return f"https://{bucket}.storage.googleapis.com/{key}"


# ---- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CloudSettings:
    """What the strategy needs: the credential's name (never its secret) and where the spool's
    segments are, as DBMS_CLOUD reads them."""

    credential: str
    spool_url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: OracleOptions) -> "CloudSettings":
        spool = options.spool_dir
        url = options.object_storage_url or (spool if is_remote(spool) else "")
        if not url:
            raise ConfigError(
                f"load_strategy object-storage has Oracle read the segments from object storage, "
                f"but the spool {spool} is a local directory",
                hint="put the spool in a bucket (--spool s3://BUCKET/PREFIX, az://CONTAINER/PREFIX or "
                "gs://BUCKET/PREFIX); if this spool is copied to a bucket as it is, set object_storage_url "
                "to that copy; or use load_strategy: insert",
            )
        if not is_remote(url):
            raise ConfigError(f"object_storage_url must be an s3://, az:// or gs:// URL, got {url!r}",
                              hint="e.g. s3://BUCKET/PREFIX, where the spool's manifest.jsonl and streams/ are")
        credential = options.cloud_credential.strip()
        if not credential:
            raise ConfigError(
                "load_strategy object-storage needs cloud_credential: the name of the DBMS_CLOUD credential "
                "Oracle uses to read the bucket",
                hint="have a DBA run DBMS_CLOUD.CREATE_CREDENTIAL for the loading user (see the README's "
                "object-storage section), then set cloud_credential: THAT_NAME",
            )
        if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_$#]*|"[^"]+"', credential) or len(credential.encode()) > 130:
            raise ConfigError(f"cloud_credential {credential!r} is not a credential name",
                              hint="the name given to DBMS_CLOUD.CREATE_CREDENTIAL, e.g. SPOOL_CRED")
        settings = cls(credential, url, dict(options.storage_options))
        settings.url("manifest.jsonl")  # a URL that cannot be made fails here, before anything runs
        return settings

    @property
    def credential_key(self) -> str:
        """The name as the catalog stores it: upper case unless given in double quotes."""
        c = self.credential
        return c[1:-1] if c.startswith('"') else c.upper()

    def url(self, item: str) -> str:
        return segment_url(self.spool_url, item, self.storage_options)

    def describe(self) -> str:
        return f"DBMS_CLOUD.COPY_DATA reads the segments under {prefix_url(self.spool_url, self.storage_options)} " \
               f"with credential {self.credential_key}"


# ---- the program --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CopyData:
    """One segment into the unit's staging table, by the server (it commits by itself)."""

    stmt: Statement
    params: tuple[str, str, str, str | None]  # staging table, credential, URL, schema (None: the user's)
    stage: tuple[str | None, str]  # (owner, name), to count its rows
    stage_q: str  # quoted and qualified, for SQL and messages
    step: SegmentStep
    expected: int  # rows in staging once this copy is done


def copy_data(stage_owner: str | None, stage: str, stage_q: str, settings: CloudSettings,
              step: SegmentStep, expected: int, schema: str | None) -> CopyData:
    url = settings.url(step.item)
    stmt = Statement(
        COPY_DATA, plsql=True,
        note=f"{step.item}: {step.rows} row(s), read by the server into staging (COPY_DATA commits by itself)",
        binds=f":1 = '{stage}', :2 = '{settings.credential_key}' (a credential name: DBMS_CLOUD keeps "
              f"its secret), :3 = '{url}', :4 = " + (f"'{schema}'" if schema else "NULL (the user's schema)"),
    )
    return CopyData(stmt, (stage, settings.credential_key, url, schema), (stage_owner, stage), stage_q, step, expected)


def run_copy(db: Any, action: CopyData) -> None:
    """COPY_DATA, then count the staging rows: every row of the segment, no more, no less."""
    db.execute(action.stmt, action.params)
    rows = db.query(f"SELECT COUNT(*) FROM {action.stage_q}", reads=action.stage)
    if not rows:
        return  # a recording: nothing ran
    have = int(rows[0][0])
    if have != action.expected:
        raise DestinationError(
            f"DBMS_CLOUD.COPY_DATA of {action.step.item} left {have} row(s) in {action.stage_q}, "
            f"expected {action.expected}",
            hint="the object in the bucket is not the spool's segment, or rows were rejected: see "
            "USER_LOAD_OPERATIONS and its COPY$..._BAD table; check object_storage_url",
        )


# ---- what COPY_DATA can stage, and how it reaches the table ----------------------------------
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_$#]*")


def stage_column_name(source: str) -> str | None:
    """The Oracle name DBMS_CLOUD gives Parquet column ``source`` (Column Name Mapping: plain
    identifiers upper-cased, others kept); None when no staging column can carry it."""
    if _PLAIN_NAME.fullmatch(source):
        name = source.upper()
        return None if name == "ROWID" else name  # the doc keeps rowid's case: not worth a special case
    if '"' in source or "\x00" in source or not source:
        return None
    return source


def stage_type(logical: str, string_limit: int) -> str | None:
    return {
        "integer": "NUMBER(19)",
        "number": "BINARY_DOUBLE",
        "decimal": f"VARCHAR2({string_limit} BYTE)",
        "string": f"VARCHAR2({string_limit} BYTE)",
        "time": f"VARCHAR2({string_limit} BYTE)",
        "json": f"VARCHAR2({string_limit} BYTE)",
        "timestamp": "TIMESTAMP(6)",
        "date": "DATE",
        "boolean": "NUMBER(1)",
    }.get(logical)


def into_table(logical: str, target: OracleType) -> str | None:
    """SQL (``{}`` = the staged value) giving the table column what the insert strategy would
    bind for it (binds.prepare_column); None when that cannot be exact."""
    fam = target.family
    text = fam in ("varchar", "clob")
    if logical == "integer":
        return {"number": "{}", "float": "TO_BINARY_DOUBLE({})"}.get(fam) or ("TO_CHAR({})" if text else None)
    if logical == "number":
        return "{}" if fam == "float" else None
    if logical == "decimal":
        return {"number": "TO_NUMBER({})", "float": "TO_BINARY_DOUBLE({})"}.get(fam) or ("{}" if text else None)
    if logical in ("string", "time", "json"):
        return "{}" if text or fam == "json" else None
    if logical == "timestamp":
        return {"tstz": "FROM_TZ({}, 'UTC')", "timestamp": "{}"}.get(fam) or \
            (f"TO_CHAR({{}}, {TIMESTAMP_TEXT_SQL})" if text else None)
    if logical == "date":
        return {"date": "{}", "timestamp": "CAST({} AS TIMESTAMP(6))",
                "tstz": "FROM_TZ(CAST({} AS TIMESTAMP(6)), 'UTC')"}.get(fam) or \
            ("TO_CHAR({}, 'YYYY-MM-DD')" if text else None)
    if logical == "boolean":
        if fam == "number":
            return "{}"
        if fam == "boolean":
            return "CASE {} WHEN 1 THEN TRUE WHEN 0 THEN FALSE END"
        return "CASE {} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END" if text else None
    return None


def blocker(unit: LoadUnit, types: Mapping[str, OracleType], fits: bool, reject_keys: Sequence[str]) -> str | None:
    """Why this unit cannot be staged by COPY_DATA exactly (it then loads with the insert
    strategy); None when it can."""
    if not fits:
        return "text longer than a VARCHAR2 (a CLOB value)"
    sources: dict[str, set[str]] = {}
    logicals: dict[str, set[str]] = {}
    for step in unit.segments:
        for c in step.columns:
            sources.setdefault(c.column, set()).add(c.source)
            logicals.setdefault(c.column, set()).add(c.type)
    staged: dict[str, str] = {}
    for name in sources:
        if len(sources[name]) > 1 or len(logicals[name]) > 1:
            return f"column {name} changes its property name or type within the unit"
        (source,) = sources[name]
        (logical,) = logicals[name]
        stage_name = stage_column_name(source)
        if stage_name is None or len(stage_name.encode()) > 128:
            return f"property {source!r} has no name DBMS_CLOUD can match"
        if stage_name in staged:
            return f"properties {staged[stage_name]!r} and {source!r} both map to column {stage_name}"
        staged[stage_name] = source
        if into_table(logical, types[name]) is None:
            what = "a JSON number (a double) into NUMBER keeps its shortest text only through binds" \
                if logical == "number" else f"{logical} values into {types[name].text}"
            return f"column {name}: {what}"
    if reject_keys and _has_empty_keys(unit, reject_keys):
        return "a key is '' (Oracle's NULL): those records go to the rejects file"
    return None


def _has_empty_keys(unit: LoadUnit, keys: Sequence[str]) -> bool:
    """Whether some record's text key is '' (read from the key columns only)."""
    for step in unit.segments:
        wanted = [c for c in step.columns if c.column in keys and c.type in ("string", "time", "json")]
        if not wanted:
            continue
        with pq.ParquetFile(step.file) as pf:
            for batch in pf.iter_batches(batch_size=65_536, columns=[c.source for c in wanted]):
                renamed = batch.rename_columns([c.column for c in wanted])
                if empty_key_mask(renamed, [c.column for c in wanted]) is not None:
                    return True
    return False


# ---- check -------------------------------------------------------------------------------------
def check(db: Any, settings: CloudSettings, user: str, report: Any) -> None:
    """DBMS_CLOUD usable, the credential there, and (when both are) the bucket readable."""
    owners = [r[0] for r in db.query(PACKAGE_VISIBLE)]
    report.add(
        "DBMS_CLOUD", f"executable (owner {owners[0]})" if owners else "not executable by this user", bool(owners),
        None if owners else f"as a DBA: GRANT EXECUTE ON DBMS_CLOUD TO {user} (on 19c outside Autonomous Database, "
        "install DBMS_CLOUD first: My Oracle Support Doc ID 2748362.1)",
    )
    key = settings.credential_key
    try:
        rows = db.query(CREDENTIAL_ROW, [key])
    except Exception as err:  # a server without the view
        report.add("cloud credential", f"{key}: cannot read USER_CREDENTIALS ({str(err).splitlines()[0]})", False,
                   "check that the server has DBMS_CLOUD (19c or later)")
        return
    if not rows:
        report.add("cloud credential", f"{key}: not found in USER_CREDENTIALS", False,
                   f"as {user}: BEGIN DBMS_CLOUD.CREATE_CREDENTIAL(credential_name => '{key}', username => '<access key "
                   "or account>', password => '<secret>'); END; -- never put the secret in spool-target's config")
        return
    username, enabled = rows[0]
    ok = str(enabled).upper() == "TRUE"
    report.add("cloud credential", f"{key} (user {username}){'' if ok else ', disabled'}", ok,
               None if ok else f"BEGIN DBMS_CREDENTIAL.ENABLE_CREDENTIAL('{key}'); END;")
    if not (owners and ok):
        return
    where = prefix_url(settings.spool_url, settings.storage_options)
    try:
        # LIST_OBJECTS is a harmless read through the same credential and network path as COPY_DATA.
        db.query("SELECT COUNT(*) FROM DBMS_CLOUD.LIST_OBJECTS(:1, :2) WHERE ROWNUM <= 1", [key, where])
    except Exception as err:
        report.add("object store", f"{where}: {str(err).splitlines()[0]}", False,
                   "check the credential's keys and the bucket URL; outside Autonomous Database a DBA must also "
                   "allow the store's host with DBMS_NETWORK_ACL_ADMIN.APPEND_HOST_ACE (port 443) and provide "
                   "the store's TLS certificates in a wallet (README: object-storage)")
        return
    report.add("object store", f"{where}: readable", True)


__all__ = ["CloudSettings", "CopyData", "STRATEGY", "blocker", "check", "copy_data", "into_table",
           "prefix_url", "run_copy", "segment_url", "stage_column_name", "stage_type"]
