"""spool-target: a Singer target for Oracle Database that spools to Parquet first."""

__version__ = "0.1.0"
