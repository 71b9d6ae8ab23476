"""Where a spool lives: parsing ``s3://``, ``gs://``, ``az://`` URLs and local
paths, and resolving ``storage_options`` plus the environment into one
store configuration.

The AWS SDK variables work as they do for the AWS CLI: ``AWS_ENDPOINT_URL_S3``
wins over ``AWS_ENDPOINT_URL``, ``AWS_REGION`` over ``AWS_DEFAULT_REGION``,
and ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``
are the keys; without them the library's own chain (web identity, ECS/EKS
container credentials, instance metadata) applies. An explicit
``storage_options`` key wins over the environment.

Secrets are collected in ``Location.secrets`` so that every error message
can be scrubbed of them (``scrub``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .errors import StorageConfigError

SCHEMES = ("s3", "gs", "az")

# storage_options keys: ours, documented in the README, each checked.
_COMMON = {"endpoint", "allow_http", "max_retries", "retry_timeout_seconds", "init_backoff_seconds",
           "connect_timeout_seconds", "timeout_seconds"}
_KEYS = {
    "s3": _COMMON | {"region", "path_style", "access_key_id", "secret_access_key", "session_token"},
    "az": _COMMON | {"account_name", "account_key", "sas_token", "use_emulator"},
    "gs": _COMMON | {"service_account_path", "service_account_key"},
}
_SECRET_KEYS = {"secret_access_key", "session_token", "account_key", "sas_token", "service_account_key"}
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCOUNT_KEY",
               "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_SAS_TOKEN",
               "AZURE_CLIENT_SECRET", "GOOGLE_SERVICE_ACCOUNT_KEY")


@dataclass(frozen=True)
class Location:
    scheme: str  # "s3", "gs", "az" or "file"
    bucket: str  # bucket or container; "" for a local path
    prefix: str  # without leading or trailing "/"
    path: str = ""  # a local path
    options: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return self.path
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def is_remote(spool: str) -> bool:
    return bool(re.match(r"^(s3|gs|az)://", spool))


def parse_location(spool: str, storage_options: Mapping[str, Any] | None = None,
                   env: Mapping[str, str] | None = None) -> Location:
    """``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``
    or a local path. Raises ``StorageConfigError`` with the fix."""
    import os

    env = os.environ if env is None else env
    options = dict(storage_options or {})
    if not is_remote(spool):
        if "://" in spool:
            raise StorageConfigError(
                f"unsupported spool URL scheme in {spool!r}",
                hint="use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or a local directory",
            )
        if options:
            raise StorageConfigError("storage_options is set but the spool is a local directory",
                                     hint="remove storage_options, or point --spool at s3://, gs:// or az://")
        return Location("file", "", "", path=spool)
    parts = urlsplit(spool)
    scheme, bucket, prefix = parts.scheme, parts.netloc, parts.path.strip("/")
    if parts.query or parts.fragment or "@" in bucket:
        raise StorageConfigError(
            "a spool URL carries no query, fragment or credentials",
            hint="put endpoint and region in storage_options and credentials in the environment",
        )
    if not bucket:
        raise StorageConfigError(f"no bucket or container in {scheme}://{prefix}",
                                 hint=f"write it as {scheme}://BUCKET/PREFIX")
    unknown = sorted(set(options) - _KEYS[scheme])
    if unknown:
        raise StorageConfigError(
            f"unknown storage_options for {scheme}://: {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(_KEYS[scheme]))}",
        )
    if scheme == "s3":
        options = _resolve_s3(options, env)
    secrets = {str(v) for k, v in options.items() if k in _SECRET_KEYS and v}
    secrets |= {env[k] for k in _SECRET_ENV if env.get(k)}
    return Location(scheme, bucket, prefix, options=options, secrets=tuple(sorted(secrets, key=len, reverse=True)))


def _resolve_s3(options: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    endpoint = options.get("endpoint") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint"] = endpoint
    options.setdefault("region", env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1")
    for key, var in (("access_key_id", "AWS_ACCESS_KEY_ID"), ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                     ("session_token", "AWS_SESSION_TOKEN")):
        if not options.get(key) and env.get(var):
            options[key] = env[var]
    return options


def retry_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """Bounded retries with exponential backoff and jitter (the library's,
    which retries connection errors, 5xx and throttling): at most
    ``max_retries`` (default 5) and ``retry_timeout_seconds`` (default 60)."""
    return {
        "max_retries": int(options.get("max_retries", 5)),
        "retry_timeout": timedelta(seconds=float(options.get("retry_timeout_seconds", 60))),
        "backoff": {
            "init_backoff": timedelta(seconds=float(options.get("init_backoff_seconds", 0.2))),
            "max_backoff": timedelta(seconds=10),
            "base": 2,
        },
    }


def client_options(options: Mapping[str, Any]) -> dict[str, Any]:
    endpoint = str(options.get("endpoint") or "")
    allow_http = options.get("allow_http", endpoint.startswith("http://"))
    return {
        "allow_http": bool(allow_http),
        "connect_timeout": timedelta(seconds=float(options.get("connect_timeout_seconds", 10))),
        "timeout": timedelta(seconds=float(options.get("timeout_seconds", 300))),
    }


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret (longest first) replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
