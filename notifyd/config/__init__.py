"""The TOML config: records (`model`), finding and reading the file (`load`), and validation that
names file, line and key (`validate`). The names most code needs are here."""

from __future__ import annotations

from notifyd.config.load import default_config_path, find_config, load_config, parse_config_text, read_config_file
from notifyd.config.model import (
                                  DEFAULT_LISTEN,
                                  SECRET_KEYS,
                                  SYSTEM_CONFIG,
                                  SYSTEM_STATE,
                                  Config,
                                  RunsConfig,
                                  ServerConfig,
                                  ServiceConfig,
                                  SourceConfig,
                                  StoreConfig,
                                  WorkerConfig,
                                  database_url_secrets,
                                  default_state_path,
                                  mask_database_url,
                                  url_secrets,
)
from notifyd.config.validate import is_loopback, locate_key, parse_config, parse_listen, postgres_url
from notifyd.errors import ConfigError

__all__ = [
    "DEFAULT_LISTEN", "SECRET_KEYS", "SYSTEM_CONFIG", "SYSTEM_STATE", "Config",
    "ConfigError", "RunsConfig", "ServerConfig", "ServiceConfig",
    "SourceConfig", "StoreConfig", "WorkerConfig", "database_url_secrets", "default_config_path",
    "default_state_path", "find_config", "is_loopback", "load_config", "locate_key", "mask_database_url",
    "parse_config", "parse_config_text", "parse_listen", "postgres_url", "read_config_file", "url_secrets",
]
