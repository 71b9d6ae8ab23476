"""load_strategy object-storage: Oracle reads each segment with DBMS_CLOUD.COPY_DATA.

No Oracle server runs here, so the witnesses are the golden plan made by the real
`plan --offline` CLI (reviewed line by line against the DBMS_CLOUD documentation cited in
spool_target/load/oracle/cloud.py), the error paths of the real CLI, and the URL mapping
for each store. The live run is tests/test_oracle_live.py::test_object_storage_*.
Update the golden file with SPOOL_TARGET_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import DATA, record_msg, run_cli, schema_msg
from loadkit import ingest
from test_oracle_cli import _normalise

from spool_target.errors import ConfigError
from spool_target.load.oracle.cloud import prefix_url, segment_url, stage_column_name

SINGER = DATA / "oracle_object_storage.singer"
BUCKET = "s3://acme-pipelines/spools/tap-x"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET"
NO_ENDPOINT = {"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""}


def cloud_env(**more: str) -> dict[str, str]:
    return {"SPOOL_TARGET_LOAD_STRATEGY": "object-storage", "SPOOL_TARGET_CLOUD_CREDENTIAL": "spool_cred",
            "SPOOL_TARGET_OBJECT_STORAGE_URL": BUCKET, "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": SECRET, **NO_ENDPOINT, **more}


@pytest.fixture
def orders(spool: Path) -> Path:
    r = run_cli("ingest", "--spool", str(spool), "--input", str(SINGER), "--log-format", "json")
    assert r.returncode == 0, r.stderr.decode()
    return spool


def plan(spool: Path, env: dict[str, str], *args: str, expect: int = 0) -> tuple[str, str]:
    r = run_cli("plan", "--spool", str(spool), "--offline", "--load-method", "upsert", *args, env=env)
    assert r.returncode == expect, r.stderr.decode()
    return r.stdout.decode(), r.stderr.decode()


def unit_of(script: str, stream: str) -> str:
    start = script.index(f"-- stream '{stream}' -> table")
    end = script.find("-- stream '", start + 1)
    return script[start:end if end > 0 else len(script)]


def test_plan_offline_golden_copy_data_into_staging_then_one_merge_with_the_ledger(orders: Path):
    script, err = plan(orders, cloud_env())
    assert SECRET not in script + err and "AKIAEXAMPLEKEY" not in script + err  # I7: the credential by name only
    assert "-- object storage: DBMS_CLOUD.COPY_DATA reads the segments under " \
           "https://acme-pipelines.s3.eu-west-1.amazonaws.com/spools/tap-x/ with credential SPOOL_CRED" in script

    unit = unit_of(script, "orders")
    drop = unit.index('DROP TABLE "SPOOL_STAGE_')
    create = unit.index('CREATE TABLE "SPOOL_STAGE_')
    copy = unit.index("DBMS_CLOUD.COPY_DATA(")
    merge = unit.index('MERGE INTO "ORDERS" t')
    ledger = unit.index('INSERT INTO "SPOOL_LEDGER"')
    commit = unit.index("COMMIT;")
    # A crash after COPY_DATA (which commits by itself) leaves only staging, dropped at the next start.
    assert drop < create < copy < merge < ledger < commit
    assert "COMMIT;" not in unit[copy:merge] and unit.count("COMMIT;") == 1  # MERGE + ledger: one transaction
    assert re.search(r"-- binds: :1 = 'SPOOL_STAGE_[0-9A-F]{8}_[0-9A-F]{8}', :2 = 'SPOOL_CRED' .*, :3 = "
                     r"'https://acme-pipelines\.s3\.eu-west-1\.amazonaws\.com/spools/tap-x/streams/orders-1c168adb/"
                     r"\d{9}-[0-9a-f]{8}\.parquet', :4 = NULL", unit)
    assert "format => '{\"type\": \"parquet\"}'" in unit and unit[copy:].index("END;\n/") < merge - copy
    # staging is named as DBMS_CLOUD names the Parquet columns, and typed as it reads them
    stage = unit[create:copy]
    for col in ('"ID" NUMBER(19)', '"Customer Name" VARCHAR2(4000 BYTE)', '"AMOUNT" VARCHAR2(4000 BYTE)',
                '"PLACED_AT" TIMESTAMP(6)', '"DUE" DATE', '"PAID" NUMBER(1)', '"EXTRAS" VARCHAR2(4000 BYTE)',
                '"_sdc_sequence" NUMBER(19)', '"_sdc_deleted_at" TIMESTAMP(6)'):
        assert col in stage, col
    # ... and converted in the MERGE as the insert strategy binds: exact decimals, UTC instants
    assert 't."AMOUNT" = TO_NUMBER(s."AMOUNT")' in unit and 't."CUSTOMER_NAME" = s."Customer Name"' in unit
    assert 't."PLACED_AT" = FROM_TZ(s."PLACED_AT", \'UTC\')' in unit
    assert 'ROW_NUMBER() OVER (PARTITION BY s."ID" ORDER BY s."_sdc_sequence" DESC)' in unit
    assert 'WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."_sdc_sequence"' in unit

    # doubles into NUMBER keep their shortest text only through binds: that unit uses executemany
    readings = unit_of(script, "readings")
    assert "DBMS_CLOUD.COPY_DATA(" not in readings and "executemany: 1 row(s)" in readings
    assert "-- not through DBMS_CLOUD.COPY_DATA: column VALUE: a JSON number (a double) into NUMBER" in readings
    assert "such units load with executemany" in err

    golden = DATA / "oracle_plan_object_storage_19c.sql"
    normal = _normalise(script, orders)
    if os.environ.get("SPOOL_TARGET_UPDATE_GOLDEN"):
        golden.write_text(normal)
    assert normal == golden.read_text()


def test_prefer_float_numbers_go_through_copy_data_too(orders: Path):
    """A BINARY_DOUBLE column takes the double itself, which COPY_DATA reads exactly."""
    script, _ = plan(orders, cloud_env(SPOOL_TARGET_PREFER_FLOAT="true"))
    readings = unit_of(script, "readings")
    assert "DBMS_CLOUD.COPY_DATA(" in readings and '"VALUE" BINARY_DOUBLE' in readings
    assert 't."VALUE" = s."VALUE"' in readings


def test_hard_deletes_and_overwrite_read_staging_by_its_parquet_names(spool: Path):
    """append-only with hard_delete: the DELETE and the INSERT ... SELECT name staging's columns as
    COPY_DATA made them; overwrite: the old rows go in the same transaction as the copied ones."""
    ingest(spool, [schema_msg("items", {"id": {"type": "integer"}, "name": {"type": ["null", "string"]}}, ["id"]),
                   record_msg("items", {"id": 1, "name": "a"}),
                   record_msg("items", {"id": 2, "name": "b", "_sdc_deleted_at": "2024-01-01T00:00:00Z"})])
    r = run_cli("plan", "--spool", str(spool), "--offline", env=cloud_env(SPOOL_TARGET_HARD_DELETE="true"))
    assert r.returncode == 0, r.stderr.decode()
    unit = unit_of(r.stdout.decode(), "items")
    assert 'WHERE (t."ID") IN (SELECT d."ID" FROM "SPOOL_STAGE_' in unit and 'd."_sdc_deleted_at" IS NOT NULL' in unit
    assert 'WHERE s."_sdc_deleted_at" IS NULL' in unit
    assert unit.index("DBMS_CLOUD.COPY_DATA(") < unit.index('DELETE FROM "ITEMS" t') < unit.index("COMMIT;")
    r = run_cli("plan", "--spool", str(spool), "--offline", "--load-method", "overwrite", env=cloud_env())
    assert r.returncode == 0, r.stderr.decode()
    unit = unit_of(r.stdout.decode(), "items")
    copy, delete = unit.index("DBMS_CLOUD.COPY_DATA("), unit.index('DELETE FROM "ITEMS";')
    assert copy < delete < unit.index('INSERT INTO "ITEMS"') < unit.index("COMMIT;")
    assert "COMMIT;" not in unit[copy:delete]


def test_a_local_spool_is_a_config_error_that_says_what_to_do(orders: Path):
    env = cloud_env(SPOOL_TARGET_OBJECT_STORAGE_URL="")
    _, err = plan(orders, env, expect=2)
    assert "load_strategy object-storage has Oracle read the segments from object storage" in err
    assert "is a local directory" in err and "--spool s3://BUCKET/PREFIX" in err and "object_storage_url" in err
    for command in (["load"], ["check"]):  # refused before any connection is tried
        r = run_cli(*command, "--spool", str(orders), "--destination", "oracle://u@127.0.0.1:9/svc",
                    env={**env, "SPOOL_TARGET_ORACLE_PASSWORD": "pw"})
        assert r.returncode == 2 and b"is a local directory" in r.stderr, r.stderr.decode()


def test_a_missing_or_bad_credential_name_is_a_config_error(orders: Path):
    _, err = plan(orders, cloud_env(SPOOL_TARGET_CLOUD_CREDENTIAL=""), expect=2)
    assert "needs cloud_credential" in err and "DBMS_CLOUD.CREATE_CREDENTIAL" in err
    _, err = plan(orders, cloud_env(SPOOL_TARGET_CLOUD_CREDENTIAL="x'; DROP TABLE t; --"), expect=2)
    assert "is not a credential name" in err


def test_object_storage_url_must_be_a_bucket_url(orders: Path):
    _, err = plan(orders, cloud_env(SPOOL_TARGET_OBJECT_STORAGE_URL="/mnt/copy"), expect=2)
    assert "object_storage_url must be an s3://, az:// or gs:// URL" in err
    _, err = plan(orders, cloud_env(SPOOL_TARGET_OBJECT_STORAGE_URL="az://spools/tap-x", AZURE_STORAGE_ACCOUNT_NAME=""),
                  expect=2)
    assert "cannot name the Azure storage account" in err and "AZURE_STORAGE_ACCOUNT_NAME" in err


# ---- the URL DBMS_CLOUD reads, per store ("DBMS_CLOUD URI Formats") ---------------------------------
ITEM = "streams/orders-1c168adb/000000002-4b8bae35.parquet"


@pytest.mark.parametrize("url, options, env, expected", [
    # AWS S3, virtual-hosted style with the region
    ("s3://acme/spools/x", {}, {"AWS_REGION": "eu-west-1"},
     f"https://acme.s3.eu-west-1.amazonaws.com/spools/x/{ITEM}"),
    ("s3://acme", {"region": "us-west-2"}, {}, f"https://acme.s3.us-west-2.amazonaws.com/{ITEM}"),
    # an S3-compatible store: the endpoint, path-style (MinIO, Ceph...) or virtual-hosted
    ("s3://acme/p", {"endpoint": "https://minio.example:9000"}, {}, f"https://minio.example:9000/acme/p/{ITEM}"),
    ("s3://acme/p", {}, {"AWS_ENDPOINT_URL_S3": "https://s3.wasabisys.com"}, f"https://s3.wasabisys.com/acme/p/{ITEM}"),
    ("s3://acme/p", {"endpoint": "https://r2.example.com", "path_style": "false"}, {},
     f"https://acme.r2.example.com/p/{ITEM}"),
    # OCI Object Storage's S3 API: Oracle's own native URI instead
    ("s3://acme/p", {"endpoint": "https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"}, {},
     f"https://objectstorage.eu-frankfurt-1.oraclecloud.com/n/axaxnpcrorw5/b/acme/o/p/{ITEM}"),
    # Azure Blob Storage, account from the options or the environment
    ("az://spools/tap-x", {"account_name": "acmedata"}, {},
     f"https://acmedata.blob.core.windows.net/spools/tap-x/{ITEM}"),
    ("az://spools/tap-x", {}, {"AZURE_STORAGE_ACCOUNT_NAME": "acmedata"},
     f"https://acmedata.blob.core.windows.net/spools/tap-x/{ITEM}"),
    # Google Cloud Storage through its S3-compatible XML API
    ("gs://acme/p", {}, {}, f"https://acme.storage.googleapis.com/p/{ITEM}"),
])
def test_segment_urls(url: str, options: dict, env: dict, expected: str):
    assert segment_url(url, ITEM, options, env) == expected
    assert prefix_url(url, options, env) == expected[:-len(ITEM)]


def test_segment_url_quotes_what_a_url_cannot_carry_and_refuses_local_paths():
    assert segment_url("s3://b/my spool", "streams/a b/x.parquet", {}, {"AWS_REGION": "us-east-1"}) == \
        "https://b.s3.us-east-1.amazonaws.com/my%20spool/streams/a%20b/x.parquet"
    with pytest.raises(ConfigError, match="not an object storage URL"):
        segment_url("/tmp/spool", ITEM, {}, {})


@pytest.mark.parametrize("source, name", [
    ("part", "PART"), ("Part", "PART"), ("Ord No", "Ord No"), ("__index_key__", "__index_key__"),
    ("6Way", "6Way"), ("_sdc_sequence", "_sdc_sequence"), ("e-mail", "e-mail"), ('a"b', None), ("rowid", None),
])
def test_staging_columns_are_named_as_dbms_cloud_names_parquet_columns(source: str, name: str | None):
    """'Avro, ORC, and Parquet to Oracle Column Name Mapping': plain names upper-cased, others kept."""
    assert stage_column_name(source) == name
