-- spool-target plan for spool <spool>
-- destination: oracle://(offline); schema: (the connecting user)
-- server: assumed Oracle Database 19c (offline): COMPATIBLE 19.0.0, 128-byte names, MAX_STRING_SIZE=STANDARD, AL32UTF8; JSON as CLOB IS JSON (objects and arrays only), booleans as NUMBER(1)
-- load_method upsert, load_strategy object-storage: 2 transaction(s), 2 segment(s), 4 row(s) pending
-- object storage: DBMS_CLOUD.COPY_DATA reads the segments under https://acme-pipelines.s3.eu-west-1.amazonaws.com/spools/tap-x/ with credential SPOOL_CRED
-- :1, :2 ... are bind variables; their values come from the spool's Parquet segments.
-- Blocks ending in / ignore only the error that means a DDL step was already done.

-- session set-up, at every connect: instants in UTC
ALTER SESSION SET TIME_ZONE = 'UTC';

-- numbers as text always use '.' (TO_NUMBER, TO_CHAR)
ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,';

-- the load ledger: one row per loaded segment or ACTIVATE_VERSION, committed with its data
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "SPOOL_LEDGER" (
  "SPOOL_ID" VARCHAR2(64 CHAR) NOT NULL,
  "ITEM" VARCHAR2(512 CHAR) NOT NULL,
  "KIND" VARCHAR2(32 CHAR) NOT NULL,
  "STREAM" VARCHAR2(1000 CHAR) NOT NULL,
  "TABLE_NAME" VARCHAR2(300 CHAR) NOT NULL,
  "ROW_COUNT" NUMBER(19) NOT NULL,
  "SHA256" VARCHAR2(64 CHAR),
  "RUN_ID" VARCHAR2(64 CHAR) NOT NULL,
  "LOADED_AT" TIMESTAMP(6) WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
  CONSTRAINT "SPOOL_LEDGER_PK" PRIMARY KEY ("SPOOL_ID", "ITEM")
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

-- table ORDERS: create it, keyed on ID
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "ORDERS" (
  "ID" NUMBER(38) NOT NULL,
  "CUSTOMER_NAME" VARCHAR2(100 CHAR),
  "AMOUNT" NUMBER,
  "PLACED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "DUE" DATE,
  "PAID" NUMBER(1) CHECK ("PAID" IN (0, 1)),
  "EXTRAS" CLOB CHECK ("EXTRAS" IS JSON),
  "SDC_EXTRACTED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_RECEIVED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_SEQUENCE" NUMBER(38),
  "SDC_TABLE_VERSION" NUMBER(38),
  "SDC_DELETED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_EXTRA" CLOB CHECK ("SDC_EXTRA" IS JSON),
  CONSTRAINT "ORDERS_PK" PRIMARY KEY ("ID")
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

-- stream 'orders' -> table ORDERS: one transaction (upsert, 1 segment(s), 3 row(s))
--   streams/orders-1c168adb/000000002-<file>.parquet
BEGIN
  EXECUTE IMMEDIATE q'[DROP TABLE "SPOOL_STAGE_<spool>_<item>" PURGE]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -942 THEN NULL;  -- ORA-00942: already done
    ELSE RAISE; END IF;
END;
/

-- staging table for this unit (dropped after the commit; swept by `load --resume`)
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "SPOOL_STAGE_<spool>_<item>" (
  "ID" NUMBER(19),
  "Customer Name" VARCHAR2(4000 BYTE),
  "AMOUNT" VARCHAR2(4000 BYTE),
  "PLACED_AT" TIMESTAMP(6),
  "DUE" DATE,
  "PAID" NUMBER(1),
  "EXTRAS" VARCHAR2(4000 BYTE),
  "_sdc_extracted_at" TIMESTAMP(6),
  "_sdc_received_at" TIMESTAMP(6),
  "_sdc_sequence" NUMBER(19),
  "_sdc_table_version" NUMBER(19),
  "_sdc_deleted_at" TIMESTAMP(6),
  "_sdc_extra" VARCHAR2(4000 BYTE)
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

-- streams/orders-1c168adb/000000002-<file>.parquet: 3 row(s), read by the server into staging (COPY_DATA commits by itself)
BEGIN
  DBMS_CLOUD.COPY_DATA(
    table_name => :1,
    credential_name => :2,
    file_uri_list => :3,
    schema_name => :4,
    format => '{"type": "parquet"}'
  );
END;
/
-- binds: :1 = 'SPOOL_STAGE_<spool>_<item>', :2 = 'SPOOL_CRED' (a credential name: DBMS_CLOUD keeps its secret), :3 = 'https://acme-pipelines.s3.eu-west-1.amazonaws.com/spools/tap-x/streams/orders-1c168adb/000000002-<file>.parquet', :4 = NULL (the user's schema)

MERGE INTO "ORDERS" t
USING (
  SELECT "ID", "Customer Name", "AMOUNT", "PLACED_AT", "DUE", "PAID", "EXTRAS", "_sdc_extracted_at", "_sdc_received_at", "_sdc_sequence", "_sdc_table_version", "_sdc_deleted_at", "_sdc_extra"
  FROM (
    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s."ID" ORDER BY s."_sdc_sequence" DESC) AS SPOOL_RN
    FROM "SPOOL_STAGE_<spool>_<item>" s
  )
  WHERE SPOOL_RN = 1
) s
ON (t."ID" = s."ID")
WHEN MATCHED THEN UPDATE SET
  t."CUSTOMER_NAME" = s."Customer Name",
  t."AMOUNT" = TO_NUMBER(s."AMOUNT"),
  t."PLACED_AT" = FROM_TZ(s."PLACED_AT", 'UTC'),
  t."DUE" = s."DUE",
  t."PAID" = s."PAID",
  t."EXTRAS" = s."EXTRAS",
  t."SDC_EXTRACTED_AT" = FROM_TZ(s."_sdc_extracted_at", 'UTC'),
  t."SDC_RECEIVED_AT" = FROM_TZ(s."_sdc_received_at", 'UTC'),
  t."SDC_SEQUENCE" = s."_sdc_sequence",
  t."SDC_TABLE_VERSION" = s."_sdc_table_version",
  t."SDC_DELETED_AT" = FROM_TZ(s."_sdc_deleted_at", 'UTC'),
  t."SDC_EXTRA" = s."_sdc_extra"
  WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."_sdc_sequence"
WHEN NOT MATCHED THEN INSERT ("ID", "CUSTOMER_NAME", "AMOUNT", "PLACED_AT", "DUE", "PAID", "EXTRAS", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA")
  VALUES (s."ID", s."Customer Name", TO_NUMBER(s."AMOUNT"), FROM_TZ(s."PLACED_AT", 'UTC'), s."DUE", s."PAID", s."EXTRAS", FROM_TZ(s."_sdc_extracted_at", 'UTC'), FROM_TZ(s."_sdc_received_at", 'UTC'), s."_sdc_sequence", s."_sdc_table_version", FROM_TZ(s."_sdc_deleted_at", 'UTC'), s."_sdc_extra");

INSERT INTO "SPOOL_LEDGER" ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") VALUES (:1, :2, :3, :4, :5, :6, :7, :8);
-- executemany, 1 row(s) of binds:
--   ('<spool id>', 'streams/orders-1c168adb/000000002-<file>.parquet', 'segment', 'orders', 'ORDERS', 3, '<sha256>', '<run id>')

COMMIT;

BEGIN
  EXECUTE IMMEDIATE q'[DROP TABLE "SPOOL_STAGE_<spool>_<item>" PURGE]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -942 THEN NULL;  -- ORA-00942: already done
    ELSE RAISE; END IF;
END;
/

-- table READINGS: create it, keyed on SENSOR
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "READINGS" (
  "SENSOR" VARCHAR2(20 CHAR) NOT NULL,
  "VALUE" NUMBER,
  "SDC_EXTRACTED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_RECEIVED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_SEQUENCE" NUMBER(38),
  "SDC_TABLE_VERSION" NUMBER(38),
  "SDC_DELETED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_EXTRA" CLOB CHECK ("SDC_EXTRA" IS JSON),
  CONSTRAINT "READINGS_PK" PRIMARY KEY ("SENSOR")
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

-- stream 'readings' -> table READINGS: one transaction (upsert, 1 segment(s), 1 row(s))
--   streams/readings-303d03f7/000000004-<file>.parquet
-- not through DBMS_CLOUD.COPY_DATA: column VALUE: a JSON number (a double) into NUMBER keeps its shortest text only through binds
BEGIN
  EXECUTE IMMEDIATE q'[DROP TABLE "SPOOL_STAGE_<spool>_<item>" PURGE]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -942 THEN NULL;  -- ORA-00942: already done
    ELSE RAISE; END IF;
END;
/

-- staging table for this unit (dropped after the commit; swept by `load --resume`)
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "SPOOL_STAGE_<spool>_<item>" (
  "SENSOR" VARCHAR2(20 CHAR),
  "VALUE" NUMBER,
  "SDC_EXTRACTED_AT" TIMESTAMP(6),
  "SDC_RECEIVED_AT" TIMESTAMP(6),
  "SDC_SEQUENCE" NUMBER(38),
  "SDC_TABLE_VERSION" NUMBER(38),
  "SDC_DELETED_AT" TIMESTAMP(6),
  "SDC_EXTRA" CLOB
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

INSERT INTO "SPOOL_STAGE_<spool>_<item>" ("SENSOR", "VALUE", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA") VALUES (:1, TO_NUMBER(:2), :3, :4, :5, :6, :7, :8);
-- executemany: 1 row(s) of streams/readings-303d03f7/000000004-<file>.parquet; binds :1 DB_TYPE_VARCHAR, :2 DB_TYPE_VARCHAR, :3 DB_TYPE_TIMESTAMP, :4 DB_TYPE_TIMESTAMP, :5 DB_TYPE_NUMBER, :6 DB_TYPE_NUMBER, :7 DB_TYPE_TIMESTAMP, :8 DB_TYPE_LONG
-- rows whose key SENSOR is '' are rejected first (Oracle stores '' as NULL)

-- the staged rows are ready; the unit's transaction starts now
COMMIT;

MERGE INTO "READINGS" t
USING (
  SELECT "SENSOR", "VALUE", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA"
  FROM (
    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s."SENSOR" ORDER BY s."SDC_SEQUENCE" DESC) AS SPOOL_RN
    FROM "SPOOL_STAGE_<spool>_<item>" s
  )
  WHERE SPOOL_RN = 1
) s
ON (t."SENSOR" = s."SENSOR")
WHEN MATCHED THEN UPDATE SET
  t."VALUE" = s."VALUE",
  t."SDC_EXTRACTED_AT" = FROM_TZ(s."SDC_EXTRACTED_AT", 'UTC'),
  t."SDC_RECEIVED_AT" = FROM_TZ(s."SDC_RECEIVED_AT", 'UTC'),
  t."SDC_SEQUENCE" = s."SDC_SEQUENCE",
  t."SDC_TABLE_VERSION" = s."SDC_TABLE_VERSION",
  t."SDC_DELETED_AT" = FROM_TZ(s."SDC_DELETED_AT", 'UTC'),
  t."SDC_EXTRA" = s."SDC_EXTRA"
  WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."SDC_SEQUENCE"
WHEN NOT MATCHED THEN INSERT ("SENSOR", "VALUE", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA")
  VALUES (s."SENSOR", s."VALUE", FROM_TZ(s."SDC_EXTRACTED_AT", 'UTC'), FROM_TZ(s."SDC_RECEIVED_AT", 'UTC'), s."SDC_SEQUENCE", s."SDC_TABLE_VERSION", FROM_TZ(s."SDC_DELETED_AT", 'UTC'), s."SDC_EXTRA");

INSERT INTO "SPOOL_LEDGER" ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") VALUES (:1, :2, :3, :4, :5, :6, :7, :8);
-- executemany, 1 row(s) of binds:
--   ('<spool id>', 'streams/readings-303d03f7/000000004-<file>.parquet', 'segment', 'readings', 'READINGS', 1, '<sha256>', '<run id>')

COMMIT;

BEGIN
  EXECUTE IMMEDIATE q'[DROP TABLE "SPOOL_STAGE_<spool>_<item>" PURGE]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -942 THEN NULL;  -- ORA-00942: already done
    ELSE RAISE; END IF;
END;
/
