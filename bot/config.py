"""``bot.toml``, read and validated once into a typed object.

Every key can be overridden by ``MOEBOT_<SECTION>_<KEY>`` for container
deployments; a bad value stops the program with a message naming the key, and so
does an unknown key or ``MOEBOT_*`` variable (a typo would otherwise go unnoticed).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, get_type_hints

from apscheduler.triggers.cron import CronTrigger

from bot.curation import CurationRules
from bot.store.database import is_postgres
from generator.sketch_input import UploadLimits
from training.gate import Margins
from training.retrain import FineTune


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StorageConfig:
    data_dir: Path = Path("data")  # pictures, uploads and faces; one path that every bot process shares
    database: str = "moebot.db"  # the SQLite file, relative to data_dir unless absolute (when url is empty)
    url: str = ""  # postgresql://user:password@host:port/dbname: several processes or machines on one database


@dataclass(frozen=True)
class GeneratorConfig:
    weights: str = ""  # used until `moebot models promote` makes other weights active
    sketch_weights: str = ""  # the sketch model (either kind below); empty = the bundled one of sketch_mode
    sketch_mode: str = "encoder"  # "encoder": sketch encoder + face generator; "cyclegan": the sketch CycleGAN
    device: str = "auto"
    threads: int = 0
    backend: str = "local"  # "local": a worker process; "ray": Ray Serve replicas
    ray_address: str = ""  # empty: start or attach a local Ray
    max_batch: int = 64  # faces drawn together
    max_wait_ms: float = 5.0  # how long the first waiting request waits for others to share its batch
    queue_limit: int = 256  # faces waiting for the generator before "busy, try again"
    compile: bool = True  # torch.compile large batches in the worker
    metrics_port: int = 0  # Prometheus metrics on 127.0.0.1:<port>; 0 = off
    display_size: int = 256  # pixels per face in chat pictures
    upscaler: bool = True  # faces shown at 128 px or more through the active upscaler; false: Lanczos
    morph_frames: int = 16


@dataclass(frozen=True)
class LimitsConfig:
    user_cooldown_s: float = 5.0  # between two drawing commands of one user
    chat_per_minute: int = 20  # drawing commands per chat per minute
    max_count: int = 4  # faces per /waifu
    top_size: int = 4  # pictures shown by /top
    admins: tuple[str, ...] = ()  # "platform:user_id": /review, /retrain, /rollback, run reports, /stats metrics


@dataclass(frozen=True)
class DiscordConfig:
    guild_id: int = 0  # sync commands to this guild only (instant, for testing); 0 = globally
    sync_commands: bool = True


@dataclass(frozen=True)
class TelegramConfig:
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    send_as_document: bool = False  # full-quality files instead of recompressed photos
    poll_timeout_s: float = 30.0


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"  # beyond loopback only with MOEBOT_WEB_TOKEN set
    port: int = 8080  # 0 = any free port
    runs_dir: Path = Path("runs")  # training run folders shown by the dashboard
    max_connections: int = 256  # open at once; each one beyond closes the oldest idle one
    idle_timeout_s: float = 15.0  # a connection that has not sent a whole request for this long is closed
    behind_https_proxy: bool = False  # a TLS proxy in front sets X-Forwarded-Proto: trust it (Secure cookie)


@dataclass(frozen=True)
class TrainingConfig(FineTune):
    """The scheduled retraining: when it runs, how it fine-tunes (``FineTune``) and how the gate judges."""
    cron: str = "30 3 * * *"  # when to check for new curated faces (crontab: minute hour day month weekday; UTC)
    every_s: float = 0.0  # check every N seconds instead of by cron (tests, tiny deployments); 0 = cron
    min_new: int = 50  # curated faces the active model was not trained on that start a run
    steps: int = 1500  # fine-tuning steps per run
    minutes: float = 45.0  # or CPU-minutes of the training loop, whichever ends first (0: steps only)
    margin_hair_ratio: float = 0.02  # the gate: how much worse than the active model a candidate may be
    margin_eye_ratio: float = 0.02
    margin_diversity_ratio: float = 0.03
    margin_fd: float = 0.10  # relative: 0.10 = a Fréchet distance up to 10% higher
    keep_runs: int = 5  # run folders kept (the newest, and the active model's)
    backend: str = "local"  # "local": a child process; "ray": a task on [generator] ray_address's cluster

    @property
    def margins(self) -> Margins:
        return Margins(self.margin_hair_ratio, self.margin_eye_ratio, self.margin_diversity_ratio, self.margin_fd)


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    uploads: UploadLimits = field(default_factory=UploadLimits)  # max_bytes, max_pixels of a /sketch upload
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    web: WebConfig = field(default_factory=WebConfig)
    curation: CurationRules = field(default_factory=CurationRules)  # when votes make a picture training data
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def database(self) -> Path:
        return self.storage.data_dir / self.storage.database

    @property
    def storage_target(self) -> str | Path:
        """Where the store opens: [storage] url when set, else the SQLite file."""
        return self.storage.url or self.database


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# keys that must be at least 1 (0 would make the bot refuse or draw nothing)
_POSITIVE = {("generator", "max_batch"), ("generator", "queue_limit"), ("generator", "display_size"),
             ("generator", "morph_frames"), ("limits", "chat_per_minute"), ("limits", "max_count"),
             ("limits", "top_size"), ("uploads", "max_bytes"), ("training", "steps"), ("training", "batch"),
             ("training", "threads"), ("training", "keep_runs"),
             ("curation", "min_voters"), ("web", "max_connections"), ("web", "idle_timeout_s")}
MAX_PIXELS_CEILING = 80_000_000  # Pillow refuses more than 89M pixels whatever we allow
_ADMIN = re.compile(r"^(telegram|discord):[^\s:]+$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
SKETCH_MODES = ("encoder", "cyclegan")  # generator.sampler.SKETCH_MODES names their bundled weights
ENV_PREFIX = "MOEBOT_"
# MOEBOT_* variables read elsewhere, which are not bot.toml keys: the playground's admin token, and where the
# browser tests write their screenshots
OTHER_VARIABLES = frozenset({"MOEBOT_WEB_TOKEN", "MOEBOT_SCREENSHOTS"})


def _validate(cfg: Config) -> None:
    """Range checks that the types alone cannot express."""
    for section, key in _POSITIVE:
        if getattr(getattr(cfg, section), key) < 1:
            raise ConfigError(f"[{section}] {key} must be at least 1")
    if not 1 <= cfg.limits.max_count <= 4:
        raise ConfigError("[limits] max_count must be between 1 and 4")
    if not 2 <= cfg.generator.morph_frames <= 64:
        raise ConfigError("[generator] morph_frames must be between 2 and 64")
    if cfg.generator.backend not in ("local", "ray"):
        raise ConfigError(f"[generator] backend must be local or ray, got {cfg.generator.backend!r}")
    if cfg.generator.sketch_mode not in SKETCH_MODES:
        raise ConfigError(f"[generator] sketch_mode must be {' or '.join(SKETCH_MODES)}, got "
                          f"{cfg.generator.sketch_mode!r}")
    if cfg.generator.metrics_port > 65535:
        raise ConfigError("[generator] metrics_port must be a TCP port (0 = off)")
    for admin in cfg.limits.admins:
        if not _ADMIN.match(admin):
            raise ConfigError(f"[limits] admins: {admin!r} is not \"telegram:<user id>\" or \"discord:<user id>\"")
    if not _DEVICE.match(cfg.generator.device):
        raise ConfigError(f"[generator] device must be auto, cpu, cuda, cuda:N or mps, got {cfg.generator.device!r}")
    if not 64 <= cfg.generator.display_size <= 512:
        raise ConfigError("[generator] display_size must be between 64 and 512")
    for key in ("base_url", "base_file_url"):
        if not getattr(cfg.telegram, key).startswith(("http://", "https://")):
            raise ConfigError(f"[telegram] {key} must be an http(s) URL")
    if cfg.web.port > 65535:
        raise ConfigError("[web] port must be a TCP port (0 = any free one)")
    if not cfg.web.host.strip():
        raise ConfigError("[web] host must name an address, e.g. 127.0.0.1")
    if not 1 <= cfg.uploads.max_pixels <= MAX_PIXELS_CEILING:
        raise ConfigError(f"[uploads] max_pixels must be between 1 and {MAX_PIXELS_CEILING}")
    if not cfg.storage.database:
        raise ConfigError("[storage] database must name a file")
    if cfg.storage.url and not is_postgres(cfg.storage.url):
        raise ConfigError("[storage] url must be empty (the SQLite file [storage] database) or a "
                          "postgresql://user:password@host:port/dbname URL")
    for key in ("curate_above", "reject_below"):
        if not 0 <= getattr(cfg.curation, key) <= 1:
            raise ConfigError(f"[curation] {key} must be between 0 and 1 (a share of 👍 votes)")
    if cfg.curation.reject_below > cfg.curation.curate_above:
        raise ConfigError("[curation] reject_below must not be above curate_above")
    if cfg.training.backend not in ("local", "ray"):
        raise ConfigError(f"[training] backend must be local or ray, got {cfg.training.backend!r}")
    if not 0 <= cfg.training.curated_share < 1:
        raise ConfigError("[training] curated_share must be at least 0 and below 1")
    try:
        CronTrigger.from_crontab(cfg.training.cron)
    except ValueError as e:
        raise ConfigError(f"[training] cron {cfg.training.cron!r} is not a crontab line: {e}") from None


def _coerce(section: str, key: str, kind: Any, value: Any) -> Any:
    name = f"[{section}] {key}"
    if kind == tuple[str, ...]:
        if isinstance(value, str):  # from the environment: comma-separated
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings, got {value!r}")
        return tuple(value)
    if kind is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{name} must be a path, got {value!r}")
        return Path(value)
    if kind is bool:
        if isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if kind in (int, float):  # non-negative numbers; a float key also takes an integer
        noun = "integer" if kind is int else "number"
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                raise ConfigError(f"{name} must be {'an' if kind is int else 'a'} {noun}, got {value!r}") from None
        accepted = int if kind is int else (int, float)
        if not isinstance(value, accepted) or isinstance(value, bool) or not 0 <= value < float("inf"):
            raise ConfigError(f"{name} must be a non-negative {noun}, got {value!r}")
        return kind(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def _unknown(names: set[str], known: set[str], prefix: str = "") -> str:
    """``names`` for an error message, each with the nearest known name when one is close (a typo); a common
    ``prefix`` is left out of the comparison, or every name would look alike."""
    stems = [k.removeprefix(prefix) for k in known]

    def named(name: str) -> str:
        near = difflib.get_close_matches(name.removeprefix(prefix), stems, n=1)
        return f"{name} (did you mean {prefix}{near[0]}?)" if near else name
    return ", ".join(named(n) for n in sorted(names))


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
    variables = set(OTHER_VARIABLES)
    for sec_name, sec_cls in get_type_hints(Config).items():
        given = dict(raw.pop(sec_name, {}))
        values = {}
        hints = get_type_hints(sec_cls)
        for key, kind in hints.items():
            variables.add(variable := f"{ENV_PREFIX}{sec_name.upper()}_{key.upper()}")
            if (env := environ.get(variable)) is not None:
                given[key] = env
            if key in given:
                values[key] = _coerce(sec_name, key, kind, given.pop(key))
        if given:
            raise ConfigError(f"[{sec_name}] has unknown key(s): {_unknown(set(given), set(hints))}")
        sections[sec_name] = sec_cls(**values)
    if raw:
        raise ConfigError(f"unknown section(s): {_unknown(set(raw), set(sections))}")
    if unknown := {name for name in environ if name.startswith(ENV_PREFIX)} - variables:
        raise ConfigError(f"unknown environment variable(s): {_unknown(unknown, variables, ENV_PREFIX)}; "
                          f"{ENV_PREFIX}<SECTION>_<KEY> overrides a key of bot.toml")
    for sec_name, key in (("storage", "data_dir"), ("web", "runs_dir")):  # relative to bot.toml's folder
        section = sections[sec_name]
        if not getattr(section, key).is_absolute():
            sections[sec_name] = dataclasses.replace(section, **{key: (base / getattr(section, key)).resolve()})
    cfg = Config(**sections)
    _validate(cfg)
    return cfg
