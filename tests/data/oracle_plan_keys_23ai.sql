-- spool-target plan for spool <spool>
-- destination: oracle://(offline); schema: (the connecting user)
-- server: assumed Oracle Database 23ai (offline): COMPATIBLE 23.0.0, 128-byte names, MAX_STRING_SIZE=STANDARD, AL32UTF8; JSON as JSON, booleans as BOOLEAN
-- load_method upsert, load_strategy insert: 2 transaction(s), 1 segment(s), 3 row(s) pending
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

-- table BOOKINGS: create it, keyed on TENANT, CODE, AT
BEGIN
  EXECUTE IMMEDIATE q'[CREATE TABLE "BOOKINGS" (
  "TENANT" VARCHAR2(796 CHAR) NOT NULL,
  "CODE" VARCHAR2(796 CHAR) NOT NULL,
  "AT" TIMESTAMP(6) NOT NULL,
  "AMOUNT" NUMBER,
  "GUESTS" NUMBER(38),
  "EXTRAS" JSON,
  "PAID" BOOLEAN,
  "SDC_EXTRACTED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_RECEIVED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_SEQUENCE" NUMBER(38),
  "SDC_TABLE_VERSION" NUMBER(38),
  "SDC_DELETED_AT" TIMESTAMP(6) WITH TIME ZONE,
  "SDC_EXTRA" JSON,
  CONSTRAINT "BOOKINGS_PK" PRIMARY KEY ("TENANT", "CODE", "AT")
)]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done
    ELSE RAISE; END IF;
END;
/

-- stream 'bookings' -> table BOOKINGS: one transaction (upsert, 1 segment(s), 3 row(s))
--   streams/bookings-5cc6c019/000000002-<file>.parquet
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
  "TENANT" VARCHAR2(796 CHAR),
  "CODE" VARCHAR2(796 CHAR),
  "AT" TIMESTAMP(6),
  "AMOUNT" NUMBER,
  "GUESTS" NUMBER(38),
  "EXTRAS" CLOB,
  "PAID" BOOLEAN,
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

INSERT INTO "SPOOL_STAGE_<spool>_<item>" ("TENANT", "CODE", "AT", "AMOUNT", "GUESTS", "PAID", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "EXTRAS", "SDC_EXTRA") VALUES (:1, :2, :3, TO_NUMBER(:4), :5, :6, :7, :8, :9, :10, :11, :12, :13);
-- executemany: 3 row(s) of streams/bookings-5cc6c019/000000002-<file>.parquet; binds :1 DB_TYPE_VARCHAR, :2 DB_TYPE_VARCHAR, :3 DB_TYPE_TIMESTAMP, :4 DB_TYPE_VARCHAR, :5 DB_TYPE_NUMBER, :6 DB_TYPE_BOOLEAN, :7 DB_TYPE_TIMESTAMP, :8 DB_TYPE_TIMESTAMP, :9 DB_TYPE_NUMBER, :10 DB_TYPE_NUMBER, :11 DB_TYPE_TIMESTAMP, :12 DB_TYPE_LONG, :13 DB_TYPE_LONG
-- rows whose key TENANT, CODE is '' are rejected first (Oracle stores '' as NULL)

-- the staged rows are ready; the unit's transaction starts now
COMMIT;

MERGE INTO "BOOKINGS" t
USING (
  SELECT "TENANT", "CODE", "AT", "AMOUNT", "GUESTS", "EXTRAS", "PAID", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA"
  FROM (
    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s."TENANT", s."CODE", s."AT" ORDER BY s."SDC_SEQUENCE" DESC) AS SPOOL_RN
    FROM "SPOOL_STAGE_<spool>_<item>" s
  )
  WHERE SPOOL_RN = 1
) s
ON (t."TENANT" = s."TENANT" AND t."CODE" = s."CODE" AND t."AT" = s."AT")
WHEN MATCHED THEN UPDATE SET
  t."AMOUNT" = s."AMOUNT",
  t."GUESTS" = s."GUESTS",
  t."EXTRAS" = s."EXTRAS",
  t."PAID" = s."PAID",
  t."SDC_EXTRACTED_AT" = FROM_TZ(s."SDC_EXTRACTED_AT", 'UTC'),
  t."SDC_RECEIVED_AT" = FROM_TZ(s."SDC_RECEIVED_AT", 'UTC'),
  t."SDC_SEQUENCE" = s."SDC_SEQUENCE",
  t."SDC_TABLE_VERSION" = s."SDC_TABLE_VERSION",
  t."SDC_DELETED_AT" = FROM_TZ(s."SDC_DELETED_AT", 'UTC'),
  t."SDC_EXTRA" = s."SDC_EXTRA"
  WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."SDC_SEQUENCE"
WHEN NOT MATCHED THEN INSERT ("TENANT", "CODE", "AT", "AMOUNT", "GUESTS", "EXTRAS", "PAID", "SDC_EXTRACTED_AT", "SDC_RECEIVED_AT", "SDC_SEQUENCE", "SDC_TABLE_VERSION", "SDC_DELETED_AT", "SDC_EXTRA")
  VALUES (s."TENANT", s."CODE", s."AT", s."AMOUNT", s."GUESTS", s."EXTRAS", s."PAID", FROM_TZ(s."SDC_EXTRACTED_AT", 'UTC'), FROM_TZ(s."SDC_RECEIVED_AT", 'UTC'), s."SDC_SEQUENCE", s."SDC_TABLE_VERSION", FROM_TZ(s."SDC_DELETED_AT", 'UTC'), s."SDC_EXTRA");

INSERT INTO "SPOOL_LEDGER" ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") VALUES (:1, :2, :3, :4, :5, :6, :7, :8);
-- executemany, 1 row(s) of binds:
--   ('<spool id>', 'streams/bookings-5cc6c019/000000002-<file>.parquet', 'segment', 'bookings', 'BOOKINGS', 3, '<sha256>', '<run id>')

COMMIT;

BEGIN
  EXECUTE IMMEDIATE q'[DROP TABLE "SPOOL_STAGE_<spool>_<item>" PURGE]';
EXCEPTION
  WHEN OTHERS THEN
    IF SQLCODE = -942 THEN NULL;  -- ORA-00942: already done
    ELSE RAISE; END IF;
END;
/

-- stream 'bookings' -> table BOOKINGS: one transaction (append-only, 1 ACTIVATE_VERSION)
UPDATE "BOOKINGS" SET "SDC_DELETED_AT" = FROM_TZ(CAST(:1 AS TIMESTAMP(6)), 'UTC') WHERE "SDC_DELETED_AT" IS NULL AND ("SDC_TABLE_VERSION" IS NULL OR "SDC_TABLE_VERSION" < :2);
-- binds: :1 = the time of the ACTIVATE_VERSION (UTC), :2 = its version
-- setinputsizes: :1 DB_TYPE_TIMESTAMP

INSERT INTO "SPOOL_LEDGER" ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") VALUES (:1, :2, :3, :4, :5, :6, :7, :8);
-- executemany, 1 row(s) of binds:
--   ('<spool id>', 'activate_version/3', 'activate_version', 'bookings', 'BOOKINGS', 0, NULL, '<run id>')

COMMIT;
