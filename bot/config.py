"""``bot.toml``, read and validated once into a typed object.

Every key can be overridden by ``MOEBOT_<SECTION>_<KEY>`` for container
deployments; a bad value stops the program with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, get_type_hints


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StorageConfig:
    data_dir: Path = Path("data")


@dataclass(frozen=True)
class GeneratorConfig:
    weights: str = ""
    device: str = "auto"
    threads: int = 0


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    @property
    def database(self) -> Path:
        return self.storage.data_dir / "moebot.db"


def _coerce(section: str, key: str, kind: Any, value: Any) -> Any:
    name = f"[{section}] {key}"
    if kind is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{name} must be a path, got {value!r}")
        return Path(value)
    if kind is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def load_config(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read ``path`` (or ./bot.toml when present, else the defaults), then apply MOEBOT_* overrides."""
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path is None and Path("bot.toml").exists():
        path = Path("bot.toml")
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
        base = path.resolve().parent
    sections = {}
    for sec_name, sec_cls in get_type_hints(Config).items():
        given = dict(raw.pop(sec_name, {}))
        values = {}
        for key, kind in get_type_hints(sec_cls).items():
            env = environ.get(f"MOEBOT_{sec_name.upper()}_{key.upper()}")
            if env is not None:
                given[key] = env
            if key in given:
                values[key] = _coerce(sec_name, key, kind, given.pop(key))
        if given:
            raise ConfigError(f"[{sec_name}] has unknown key(s): {', '.join(sorted(given))}")
        sections[sec_name] = sec_cls(**values)
    if raw:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(raw))}")
    storage = sections["storage"]
    if not storage.data_dir.is_absolute():
        sections["storage"] = dataclasses.replace(storage, data_dir=(base / storage.data_dir).resolve())
    return Config(**sections)
