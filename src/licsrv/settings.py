"""Configuration: one frozen object read from LICSRV_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _find_data_dir(name: str) -> Path:
    """`sql/` and `templates/` sit at the top of a checkout; an installed wheel ships them under share/."""
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    for prefix in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        installed = Path(prefix) / "share" / "licsrv" / name
        if installed.is_dir():
            return installed
    return checkout


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _networks(value: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
    )


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    trusted_proxies: tuple[Network, ...] = ()
    max_body_bytes: int = 64 * 1024
    max_import_bytes: int = 32 * 1024 * 1024  # a license import's CSV (about 200 000 lines)
    header_read_timeout: float = 10.0
    log_level: str = "INFO"
    access_log: bool = True
    cookie_secure: str = "auto"
    redis_timeout: float = 1.0
    ready_timeout: float = 1.0
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_acquire_timeout: float = 5.0
    db_command_timeout: float = 5.0
    db_lock_timeout: float = 5.0
    db_idle_in_transaction_timeout: float = 15.0
    redis_max_connections: int = 50
    product_cache_refresh: float = 60.0
    usage_sample_interval: float = 60.0
    loop_block_limit: float = 5.0
    pool_wedge_limit: float = 30.0
    shutdown_timeout: float = 10.0
    admin_idle_timeout: int = 1800
    admin_max_session_age: int = 12 * 3600
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    login_user_max_failures: int = 100
    login_user_window_seconds: int = 3600
    login_address_max_failures: int = 50
    login_address_window_seconds: int = 3600
    login_known_address_seconds: int = 30 * 24 * 3600
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    webhook_poll_interval: float = 5.0
    webhook_retry_base: float = 30.0
    webhook_retry_cap: float = 4 * 3600.0
    webhook_retry_window: float = 3 * 86400.0
    webhook_batch: int = 20
    webhook_expiry_scan_interval: float = 15.0
    webhook_secret_overlap: float = 86400.0
    webhook_retention_days: int = 30
    ip_retention_days: int = 90
    sql_dir: Path = field(default_factory=lambda: _find_data_dir("sql"))
    templates_dir: Path = field(default_factory=lambda: _find_data_dir("templates"))
    dev_dir: Path = field(default_factory=lambda: Path(".licsrv"))
    # Customer portal (DESIGN §7c) and the mail it sends; no SMTP URL keeps mail in the outbox page.
    smtp_url: str = ""
    public_url: str = ""
    mail_from: str = "noreply@localhost"
    mail_poll_interval: float = 2.0
    portal_idle_timeout: int = 1800
    portal_max_age: int = 7 * 24 * 3600
    portal_code_ttl: int = 24 * 3600
    portal_reset_ttl: int = 3600
    portal_failures_per_account_ip: int = 5
    portal_failures_per_ip: int = 50
    portal_failure_window: int = 900

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base = cls()
        return replace(
            base,
            database_url=env.get("LICSRV_DATABASE_URL", ""),
            redis_url=env.get("LICSRV_REDIS_URL", ""),
            secret_key=env.get("LICSRV_SECRET_KEY", ""),
            host=env.get("LICSRV_HOST", base.host),
            port=int(env.get("LICSRV_PORT", base.port)),
            workers=int(env.get("LICSRV_WORKERS") or base.workers),
            trusted_proxies=_networks(env.get("LICSRV_TRUSTED_PROXIES", "")),
            max_body_bytes=int(env.get("LICSRV_MAX_BODY_BYTES", base.max_body_bytes)),
            max_import_bytes=int(env.get("LICSRV_MAX_IMPORT_BYTES", base.max_import_bytes)),
            header_read_timeout=float(env.get("LICSRV_HEADER_READ_TIMEOUT", base.header_read_timeout)),
            log_level=env.get("LICSRV_LOG_LEVEL", base.log_level).upper(),
            access_log=_bool(env.get("LICSRV_ACCESS_LOG"), base.access_log),
            cookie_secure=env.get("LICSRV_COOKIE_SECURE", base.cookie_secure).lower(),
            redis_timeout=float(env.get("LICSRV_REDIS_TIMEOUT", base.redis_timeout)),
            db_pool_min=int(env.get("LICSRV_DB_POOL_MIN", base.db_pool_min)),
            db_pool_max=int(env.get("LICSRV_DB_POOL_MAX", base.db_pool_max)),
            db_acquire_timeout=float(env.get("LICSRV_DB_ACQUIRE_TIMEOUT", base.db_acquire_timeout)),
            db_command_timeout=float(env.get("LICSRV_DB_COMMAND_TIMEOUT", base.db_command_timeout)),
            db_lock_timeout=float(env.get("LICSRV_DB_LOCK_TIMEOUT", base.db_lock_timeout)),
            db_idle_in_transaction_timeout=float(
                env.get("LICSRV_DB_IDLE_IN_TRANSACTION_TIMEOUT", base.db_idle_in_transaction_timeout)
            ),
            redis_max_connections=int(env.get("LICSRV_REDIS_MAX_CONNECTIONS", base.redis_max_connections)),
            product_cache_refresh=float(env.get("LICSRV_PRODUCT_CACHE_REFRESH", base.product_cache_refresh)),
            usage_sample_interval=float(env.get("LICSRV_USAGE_SAMPLE_INTERVAL", base.usage_sample_interval)),
            loop_block_limit=float(env.get("LICSRV_LOOP_BLOCK_LIMIT", base.loop_block_limit)),
            pool_wedge_limit=float(env.get("LICSRV_POOL_WEDGE_LIMIT", base.pool_wedge_limit)),
            shutdown_timeout=float(env.get("LICSRV_SHUTDOWN_TIMEOUT", base.shutdown_timeout)),
            webhook_allow_private=_bool(env.get("LICSRV_WEBHOOK_ALLOW_PRIVATE"), base.webhook_allow_private),
            webhook_poll_interval=float(env.get("LICSRV_WEBHOOK_POLL_INTERVAL", base.webhook_poll_interval)),
            webhook_retry_base=float(env.get("LICSRV_WEBHOOK_RETRY_BASE", base.webhook_retry_base)),
            webhook_retry_window=float(env.get("LICSRV_WEBHOOK_RETRY_WINDOW", base.webhook_retry_window)),
            ip_retention_days=int(env.get("LICSRV_IP_RETENTION_DAYS") or base.ip_retention_days),
            sql_dir=Path(env["LICSRV_SQL_DIR"]) if env.get("LICSRV_SQL_DIR") else base.sql_dir,
            templates_dir=(
                Path(env["LICSRV_TEMPLATES_DIR"]) if env.get("LICSRV_TEMPLATES_DIR") else base.templates_dir
            ),
            dev_dir=Path(env.get("LICSRV_DEV_DIR", str(base.dev_dir))),
            smtp_url=env.get("LICSRV_SMTP_URL", ""),
            public_url=env.get("LICSRV_PUBLIC_URL", ""),
            mail_from=env.get("LICSRV_MAIL_FROM", base.mail_from),
            portal_idle_timeout=int(env.get("LICSRV_PORTAL_IDLE_TIMEOUT", base.portal_idle_timeout)),
            portal_max_age=int(env.get("LICSRV_PORTAL_MAX_AGE", base.portal_max_age)),
            portal_reset_ttl=int(env.get("LICSRV_PORTAL_RESET_TTL", base.portal_reset_ttl)),
        )

    def require_services(self) -> None:
        missing = [
            name
            for name, value in (
                ("LICSRV_DATABASE_URL", self.database_url),
                ("LICSRV_REDIS_URL", self.redis_url),
                ("LICSRV_SECRET_KEY", self.secret_key),
            )
            if not value
        ]
        if missing:
            raise SystemExit(f"licsrv: set {', '.join(missing)} (see .env.example), or use `licsrv dev`")
