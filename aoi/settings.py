"""One frozen settings tree for the whole system, read from ``AOI_*`` environment variables.

Nested groups use a double underscore: ``AOI_INGEST__MAX_PIXELS=50000000``. ``aoi config`` prints the
resolved tree. Nothing here touches the disk: paths are computed, never created.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseModel):
    """Limits and defaults of the ingest path: what is accepted, how crops are cut."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_file_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Larger files are quarantined unread.")
    max_pixels: int = Field(40_000_000, gt=0, description="Width x height above this is a decompression bomb.")
    allowed_modes: tuple[str, ...] = Field(
        ("L", "RGB"), description="Pillow modes accepted as AOI/VRS images (L, RGB or both)."
    )
    crop_size: int = Field(64, gt=0, description="Side of the square window cut around each annotated box.")
    crop_margin: int = Field(8, ge=0, description="Pixels kept around a box larger than the crop size.")
    chunk_size: int = Field(256, gt=0, description="Images per ingest step; each chunk commits on its own.")
    chunk_max_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Bytes of images an ingest chunk holds in memory at most (with chunk_size); at least "
        "max_file_bytes.",
    )
    group_pattern: str | None = Field(
        r"(?P<group>.+?)_roi_\d+$",
        description="Regex on a file stem whose 'group' names the source photo of a crop (folder format).",
    )
    label_map: Path | None = Field(None, description="YAML file mapping raw label names to project labels.")
    zip_max_members: int = Field(100_000, gt=0, description="An archive with more members is refused whole.")
    zip_max_total_bytes: int = Field(2 * 1024**3, gt=0, description="Uncompressed size above this is refused.")
    zip_max_ratio: float = Field(200.0, gt=1, description="Uncompressed/compressed ratio above this is a zip bomb.")
    # Upload rules of the platform manual: smaller or more elongated images are quarantined, naming the rule.
    min_width: int = Field(30, ge=1, description="Upload rule: narrower images are quarantined (pixels).")
    min_height: int = Field(30, ge=1, description="Upload rule: lower images are quarantined (pixels).")
    max_aspect_ratio: float = Field(
        6.0, ge=1, description="Upload rule: long side / short side above this is quarantined."
    )
    min_label_images: int = Field(
        50,
        ge=0,
        description="Upload rule: ingest and dataset build warn about labels with fewer images than this (0: never).",
    )

    @model_validator(mode="after")
    def _a_file_fits_a_chunk(self) -> IngestSettings:
        # A chunk holds whole files: one at the file limit must fit, or the byte bound could not hold.
        if self.chunk_max_bytes < self.max_file_bytes:
            raise ValueError(
                f"chunk_max_bytes ({self.chunk_max_bytes}) must be at least max_file_bytes ({self.max_file_bytes})"
            )
        return self

    @field_validator("allowed_modes")
    @classmethod
    def _measurable_modes(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        # Tone metrics are defined on 8-bit gray and RGB; other modes would need a conversion that
        # changes the very values the specs limit.
        unknown = [m for m in modes if m not in ("L", "RGB")]
        if unknown or not modes:
            raise ValueError(f"allowed_modes must be L, RGB or both, not {list(modes)}")
        return modes


class DatasetsSettings(BaseModel):
    """Dataset builds: how much of a class a cleaning rule may remove before the build is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_class_loss: float = Field(
        0.2,
        ge=0,
        le=1,
        description="A rule that judges images (validation) removing a "
        "larger share of any class refuses the build, unless --allow-class-loss.",
    )


class PrefectSettings(BaseModel):
    """The local Prefect server that ``aoi`` starts when ``PREFECT_API_URL`` is not set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Address the local Prefect server listens on.")
    port: int = Field(4200, gt=0, lt=65536, description="Port of the local Prefect server and its UI.")
    start_timeout_s: float = Field(90.0, gt=0, description="How long to wait for the server to answer.")
    auth_string: SecretStr | None = Field(
        None,
        description="user:password the local server requires of every client (Prefect basic auth); unset: "
        "one generated per AOI_HOME, kept in AOI_HOME/prefect/auth_string (owner-only).",
    )


class RaySettings(BaseModel):
    """Ray, where training runs: a local instance per run, or the cluster at RAY_ADDRESS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_token: SecretStr | None = Field(
        None,
        description="Token of the Ray cluster at RAY_ADDRESS (its nodes run with RAY_AUTH_MODE=token and this "
        "RAY_AUTH_TOKEN); unset: Ray's own RAY_AUTH_TOKEN(_PATH), else a fresh random one per local Ray.",
    )


class EvaluationSettings(BaseModel):
    """Blind-test evaluation and the Unknown filter (docs/domain.md#blind-tests)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unknown_threshold: float = Field(
        0.9945,
        gt=0,
        le=1,
        description="Top-class confidence below this is UNKNOWN, unless the model has a calibrated one.",
    )
    calibration_target_accuracy: float = Field(
        0.99,
        gt=0,
        le=1,
        description="A new model's Unknown threshold is the least Unknown that keeps this accuracy on its valid "
        "split: the demo and the retrain flow calibrate every model they train to it.",
    )
    batch_size: int = Field(256, gt=0, description="Images per forward pass when evaluating.")
    report_max_errors: int = Field(500, gt=0, description="Wrong images shown in a report's error gallery.")


class GateSettings(BaseModel):
    """The promotion gate: every rule must pass on the registered blind sets before a person is asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_blind_accuracy: float = Field(0.90, ge=0, le=1, description="Accuracy floor on each blind set.")
    margin_over_production: float = Field(
        0.0, ge=-1, le=1, description="Blind accuracy must reach production's on the same sets plus this."
    )
    max_unknown_rate: float = Field(0.30, ge=0, le=1, description="Unknown rate ceiling on the blind sets.")
    min_class_recall: float = Field(0.50, ge=0, le=1, description="No class's blind recall below this.")
    max_tone_drop: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Largest accuracy drop when one channel is scaled by 0.9 or 1.1 (docs/domain.md#joint-tone).",
    )
    warn_recall_below: float = Field(
        0.90, ge=0, le=1, description="Warn (never fail) about a label whose blind recall is below this."
    )
    warn_min_blind_images: int = Field(
        30,
        ge=0,
        description="Warn (never fail) about a label with fewer blind images than this: its recall says little.",
    )
    approval_timeout_s: int = Field(86400, gt=0, description="A pending approval is rejected after this long.")
    approval_poll_s: int = Field(5, gt=0, description="How often the paused promote flow looks for a decision.")


class ExportSettings(BaseModel):
    """Exported models (``aoi export``): the parity gate an export must pass before serving may run it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_top1_agreement: float = Field(
        0.995,
        ge=0,
        le=1,
        description="Share of blind images on which the export's top class must equal PyTorch's for it to be accepted.",
    )
    max_accuracy_delta: float = Field(
        0.003,
        ge=0,
        le=1,
        description="Largest difference between the export's and PyTorch's blind accuracy (0.003: 0.3 points).",
    )
    calibration_images: int = Field(
        256, gt=0, description="Valid-split images the INT8 static quantization is calibrated on (at most)."
    )
    threads: int = Field(
        0, ge=0, description="CPU threads an exported model runs on, in export latency and in serving; 0: all cores."
    )
    latency_s: float = Field(
        2.0, gt=0, description="Seconds each latency figure is measured for at export (batch 1, batch 32), per engine."
    )


class FeaturesSettings(BaseModel):
    """Per-machine features (Feast); the online store itself is chosen by the top-level AOI_FEAST_ONLINE."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tone_window_days: int = Field(7, gt=0, description="Days of a machine's images its rolling tone statistics cover.")
    reference_machine: str = Field(
        "VRS-REF",
        min_length=1,
        max_length=64,
        description="The machine whose shots of the reference board define the reference tone every machine is "
        "calibrated to (the tone the models were trained on).",
    )
    max_calibration_gain: float = Field(
        2.0,
        gt=1,
        description="A fitted gain above this (or below its inverse) means the reference samples do not "
        "match the reference board: refused rather than applied.",
    )


SERVABLE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
API_KEY_MIN_LENGTH = 16


class ServingSettings(BaseModel):
    """The BentoML classification service (``aoi serve``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Address `aoi serve` listens on.")
    port: int = Field(3000, gt=0, lt=65536, description="Port of `aoi serve`.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="A /classify request body over this is refused (413)."
    )
    max_pixels: int = Field(25_000_000, gt=0, description="An image with more pixels than this is refused (413).")
    image_formats: tuple[str, ...] = Field(
        ("PNG", "JPEG", "BMP"),
        description="Image formats /classify accepts (Pillow names: PNG, JPEG, BMP, TIFF, WEBP); others are "
        "refused (415).",
    )
    batching: bool = Field(
        True, description="Batch model calls across requests (adaptive batching); off: one forward per request."
    )
    max_batch_size: int = Field(32, gt=0, description="Largest batch the adaptive batcher forms.")
    max_latency_ms: int = Field(
        10_000,
        gt=0,
        description="BentoML refuses (503) a request that would wait longer than this for its batch: a "
        "deadline, not a window.",
    )
    reload_poll_s: float = Field(
        2.0, gt=0, description="How often the service looks for a new production model (hot reload)."
    )
    model_source: Literal["auto", "bento", "catalog"] = Field(
        "auto",
        description="Where the service reads its models: `catalog` (the production models of the catalog and "
        "AOI_HOME's model store, hot reload), `bento` (the models packed into the Bento by `aoi bento build`, no "
        "reload), `auto` (bento inside such a Bento, else catalog).",
    )
    log_batch_rows: int = Field(500, gt=0, description="Prediction-log rows written per catalog transaction.")
    log_flush_s: float = Field(0.5, gt=0, description="Longest a prediction waits before it is written to the catalog.")
    log_fsync: Literal["always", "interval", "never"] = Field(
        "interval",
        description="When the prediction-log journal reaches the disk: always (before each answer), interval "
        "(every log_flush_s), never (the OS decides). Every answer survives a crash of the service regardless.",
    )
    log_max_pending: int = Field(
        1_000_000,
        gt=0,
        description="Answers the journal may hold that the catalog has not taken; beyond it /classify answers 503.",
    )
    rules: Path | None = Field(None, description="Post-model rule and route table (YAML); default serving/rules.yaml.")
    keep_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of the confident answers (route FINAL, not Unknown) whose image the service keeps for "
        "review, sampled by request id; every REVIEW, VRS and Unknown answer is kept regardless.",
    )
    keep_max_bytes: int = Field(
        2 * 2**30,
        gt=0,
        description="Image bytes the kept answers may hold in the image store; over it the oldest waiting ones are "
        "dropped first (then the oldest skipped), never a reviewed one.",
    )
    keep_queue_bytes: int = Field(
        64 * 2**20,
        gt=0,
        description="Image bytes waiting for the kept-answer writer; a keep past it is skipped and counted, the "
        "answer still goes out.",
    )
    runtime: Literal["torch", "onnx", "auto"] = Field(
        "auto",
        description="What runs the forward pass: torch (the trained network); onnx (the version's fastest export "
        "that passed the parity gate, torch where it has none); auto (that export only where it measured faster "
        "than torch on the same device at export, else torch).",
    )
    tone_specs: dict[str, str] = Field(
        default_factory=dict,
        description='Tone spec per kind for the in-spec answer, e.g. {"color": "vrs-capture-2023"}; default: '
        "the spec the production model's dataset was cleaned with.",
    )

    @field_validator("image_formats")
    @classmethod
    def _known_formats(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        # Formats a line camera writes and Pillow decodes without outside programs (no EPS, no PDF ...).
        formats = tuple(f.upper() for f in formats)
        unknown = [f for f in formats if f not in SERVABLE_FORMATS]
        if unknown or not formats:
            raise ValueError(f"image_formats must be some of {', '.join(SERVABLE_FORMATS)}, not {list(formats)}")
        return formats


class MonitoringSettings(BaseModel):
    """Drift checks over the prediction log (Evidently) and the retraining they trigger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_hours: float = Field(24.0, gt=0, description="The prediction-log window a drift check reads, up to now.")
    min_samples: int = Field(200, gt=0, description="Fewer answers in a window (one kind) than this: no verdict.")
    # Measured on the real colour set (aoi drift-study, two models): 100 answers per machine raised 2% false alarms and
    # found every lamp at 90% light; 50 raised about 30% (docs/measurements.md#drift-samples-per-machine).
    min_machine_samples: int = Field(
        100, gt=0, description="Fewer answers from one machine than this: no verdict for it."
    )
    min_part_reference: int = Field(
        30,
        gt=0,
        description="A part number with fewer reference images than this has no reference: its answers are "
        "reported, not judged.",
    )
    drift_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Drift when at least this share of the monitored columns drifted (Evidently per-column tests).",
    )
    max_unknown_rise: float = Field(
        0.10,
        gt=0,
        le=1,
        description="Drift when the Unknown rate rose by more than this over the reference's, with 95% confidence.",
    )
    quality_drift_alone: bool = Field(
        True,
        description="A drifted image-quality column (sharpness, smear) is drift on its own; off: reported only. "
        "They never count in the drift share.",
    )
    # An effect size, not a p-value: on hundreds of answers a K-S test flags differences too small to matter (it
    # raised 62-98% false alarms on undrifted PKU windows); normed Wasserstein over 0.3 std does not, and still
    # finds a lamp at 90% light in every window (measured with `aoi drift-study`, see README).
    num_method: str | None = Field(
        "wasserstein",
        description="Evidently drift method for numeric columns (wasserstein, ks, psi ...); unset: Evidently "
        "picks by sample size.",
    )
    num_threshold: float | None = Field(
        0.3, gt=0, description="Threshold of num_method (normed Wasserstein: share of the reference's std)."
    )
    cat_method: str | None = Field(
        "jensenshannon",
        description="Evidently drift method for the predicted label and the Unknown flag; unset: Evidently picks.",
    )
    cat_threshold: float | None = Field(0.1, gt=0, description="Threshold of cat_method.")
    retrain_cron: str = Field(
        "0 3 * * 1", description="Cron schedule of the retrain deployments (default Mondays 03:00)."
    )
    monitor_interval_s: int = Field(3600, gt=0, description="How often the monitor deployment runs.")
    work_pool: str = Field(
        "aoi-process", min_length=1, description="Prefect work pool the deployments run on (`aoi worker` serves it)."
    )
    work_pool_type: Literal["process", "kubernetes", "docker"] = Field(
        "process", description="Type of that pool when `aoi deploy` creates it, and of the worker `aoi worker` starts."
    )
    inbox: Path | None = Field(
        None,
        description="Folder of new labelled batches the retrain flow ingests (inbox/<kind>/<batch>); default "
        "AOI_HOME/inbox.",
    )
    max_accuracy_drop: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Drift when the live accuracy of confirmed answers (its upper confidence bound) is below the "
        "production model's blind accepted accuracy by more than this.",
    )
    min_confirmed: int = Field(
        100,
        gt=0,
        description="Fewer confirmed answers in a scope (kind, machine, part) than this: no live-accuracy verdict.",
    )
    accuracy_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1,
        description="One-sided confidence of the live accuracy's upper bound (Wilson score) that decides a drop.",
    )
    report_retention: int = Field(
        50,
        gt=0,
        description="HTML drift reports kept per kind: those of the newest this many checks; older ones are removed "
        "after a check (the check's row stays).",
    )


class WorkbenchSettings(BaseModel):
    """The workbench web application (``aoi web``): where it listens, how its sessions are signed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(
        "127.0.0.1", description="Address `aoi web` listens on (loopback unless TLS or allow_insecure_bind)."
    )
    port: int = Field(8200, gt=0, lt=65536, description="Port of `aoi web`.")
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs the session cookies (at least 32 characters); unset: one generated per AOI_HOME, "
        "kept in AOI_HOME/workbench/secret_key (owner-only).",
    )
    public_url: str | None = Field(
        None, description="The workbench's address as others link to it (Prefect artifacts); default http://host:port."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: `aoi web` serves HTTPS with it and tls_key.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    allow_insecure_bind: bool = Field(
        False, description="Allow a non-loopback bind without TLS (plain HTTP passwords on the network: say why)."
    )
    session_max_age_s: int = Field(12 * 3600, gt=0, description="A login lasts this long (seconds).")
    page_size: int = Field(100, gt=0, le=1000, description="Thumbnails per gallery page.")
    review_order: Literal["lowest_confidence", "class_quota", "oldest"] = Field(
        "lowest_confidence",
        description="Order of the review queue (/review, `aoi review list`): lowest_confidence first, class_quota "
        "(round-robin over the classes the model answered, its top-1, so a rare class is not buried) or oldest first.",
    )

    @field_validator("secret_key")
    @classmethod
    def _real_secret(cls, key: SecretStr | None) -> SecretStr | None:
        # A short key makes the session cookies forgeable; the message never shows the key.
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("AOI_WORKBENCH__SECRET_KEY is shorter than 32 characters: use a random key")
        return key

    @model_validator(mode="after")
    def _tls_pair(self) -> WorkbenchSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both AOI_WORKBENCH__TLS_CERT and AOI_WORKBENCH__TLS_KEY, or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def url(self, host: str | None = None, port: int | None = None) -> str:
        """Where the workbench answers when started with this host and port."""
        scheme = "https" if self.tls else "http"
        host = host or self.host
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port or self.port}"

    @property
    def link_url(self) -> str:
        """The address other components link to."""
        return (self.public_url or self.url()).rstrip("/")


class Settings(BaseSettings):
    """The resolved configuration. Frozen: build a new one (``Settings(...)``) to change anything."""

    model_config = SettingsConfigDict(
        env_prefix="AOI_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        validate_default=True,
        env_parse_none_str="null",  # AOI_MONITORING__NUM_METHOD=null unsets an optional setting
        hide_input_in_errors=True,  # an error message must not print a key or a password it was given
    )

    home: Path = Field(Path(".aoi"), description="All state: catalog, image store, quarantine, reports, Prefect.")
    db_url: str | None = Field(None, description="Catalog database URL; default a SQLite file under AOI_HOME.")
    datasets_dir: Path = Field(Path("data"), description="Where public data sets are found or downloaded to.")
    deeppcb_archive_url: str = Field(
        "https://github.com/tangsanli5201/DeepPCB/archive/refs/heads/master.zip",
        description="Where `aoi public fetch deeppcb` downloads DeepPCB from when it is missing.",
    )
    store_fsync: bool = Field(
        True, description="Flush stored images to disk (once per chunk) before their catalog rows commit."
    )
    metrics_min_side: int = Field(
        128,
        gt=0,
        description="JPEG metrics decode at reduced size down to this many pixels a side (sharpness and "
        "smear are defined at 128: a smaller value decodes at 128 all the same).",
    )
    ingest: IngestSettings = IngestSettings()
    datasets: DatasetsSettings = DatasetsSettings()
    prefect: PrefectSettings = PrefectSettings()
    ray: RaySettings = RaySettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    gate: GateSettings = GateSettings()
    export: ExportSettings = ExportSettings()
    serving: ServingSettings = ServingSettings()
    features: FeaturesSettings = FeaturesSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    workbench: WorkbenchSettings = WorkbenchSettings()
    api_key: SecretStr | None = Field(
        None,
        description=f"Bearer key the classification service requires on everything but health and its OpenAPI page "
        f"(at least {API_KEY_MIN_LENGTH} printable ASCII characters); unset: the service answers this host only.",
    )
    feast_online: str | None = Field(
        None,
        description="Feast online store: unset, a SQLite file under AOI_HOME/feast; "
        "redis://[user:password@]host:port[/db] "
        "for Redis (rediss:// for TLS).",
    )

    @field_validator("api_key")
    @classmethod
    def _real_key(cls, key: SecretStr | None) -> SecretStr | None:
        # An empty or short key would switch authentication off or make it guessable without anyone noticing.
        # The messages never show the key.
        if key is None:
            return None
        value = key.get_secret_value()
        if not value.strip():
            raise ValueError(
                "AOI_API_KEY is set but empty: unset it (the service then answers this host only) or "
                "set a real key, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not all("!" <= c <= "~" for c in value):
            raise ValueError(
                "AOI_API_KEY may hold only printable ASCII characters without spaces (it travels in an HTTP header)"
            )
        if len(value) < API_KEY_MIN_LENGTH:
            raise ValueError(
                f"AOI_API_KEY is shorter than {API_KEY_MIN_LENGTH} characters: use a random key, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return key

    @field_validator("home", "datasets_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once here so that every component sees the same folder whatever its working directory.
        return value.expanduser().absolute()

    @property
    def catalog_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def inbox_dir(self) -> Path:
        return self.monitoring.inbox or self.home / "inbox"

    def describe(self) -> dict:
        """The settings as plain JSON-able data, with the derived paths and every secret masked: SecretStr values,
        the password of any URL (catalog, Feast online store ...), any field named like a password, token or key."""
        data = mask_secrets(self.model_dump(mode="json"))
        data["db_url"] = mask_password(self.catalog_url)
        data["derived"] = {
            "store_dir": str(self.store_dir),
            "quarantine_dir": str(self.quarantine_dir),
            "reports_dir": str(self.reports_dir),
            "prefect_home": str(self.prefect_home),
            "inbox_dir": str(self.inbox_dir),
        }
        return data


MASK = "***"
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|api_key|apikey|credential)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^/\s]+)@")


def mask_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``, ``redis://:pw@h`` -> ``redis://:***@h``;
    a URL without a password is unchanged. Works on any text that holds such URLs (an error message too)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)


def mask_secrets(data):
    """``data`` (JSON-like) with every URL password masked and the value of every secret-named field hidden."""
    if isinstance(data, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_NAME.search(k) and isinstance(v, str) and v else mask_secrets(v))
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [mask_secrets(v) for v in data]
    if isinstance(data, str):
        return mask_password(data)
    return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()


def env_var_names() -> list[str]:
    """Every environment variable the settings tree reads, e.g. ``AOI_INGEST__MAX_PIXELS``."""
    names: list[str] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += [f"AOI_{name.upper()}__{sub.upper()}" for sub in annotation.model_fields]
        else:
            names.append(f"AOI_{name.upper()}")
    return names
