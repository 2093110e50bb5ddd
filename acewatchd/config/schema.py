"""Every config key: frozen dataclasses with their defaults, bounds and docs.

All defaults live here. Each field's metadata carries its ``doc`` (the README's configuration
table is generated from it: ``python -m acewatchd.config.reference``) and, where it has them, its
bounds (``min``/``max``, ``pattern``). Bounds on ``[train]`` are ACE-Step's own Gradio bounds
(CONTRACT §1d) so a bad value is caught when the file is saved, not at 1 a.m. ``config.toml``
at the repo root documents these defaults (tests/config/test_defaults.py keeps it in step);
reading and validating a file is ``acewatchd.config.load``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

# A dataset is a drop folder, named in any script ("김경호", "bach chorales"). Refused: what
# could leave its folder or hide (a leading ".", "/", "\\"), control, zero-width and
# bidirectional characters, blank ends, and more than 64 characters. ACE-Step's side uses
# acestep.layout.safe_name of it.
DATASET_NAME = re.compile(r"^(?![.\s])[^/\\\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                          r"\u2060-\u2069\ufeff]{1,64}(?<!\s)\Z")


def _meta(doc: str, lo: float | None = None, hi: float | None = None,
          **extra: Any) -> dict[str, Any]:
    """A field's metadata: its README text (markdown) and bounds, checked by config.load."""
    return {"doc": doc, "min": lo, "max": hi, **extra}


@dataclass(frozen=True)
class Paths:
    drop: Path = field(default=Path("drop"), metadata=_meta(
        "`drop/<dataset>/`: one folder per LoRA; copy songs in here"))
    outbox: Path = field(default=Path("outbox"), metadata=_meta(
        "rendered samples, one folder per run, with an `index.html` to listen"))
    rejected: Path = field(default=Path("rejected"), metadata=_meta(
        "copies of files that failed validation, each with a `.reason.txt`"))
    state: Path = field(default=Path("state"), metadata=_meta(
        "the ledger (SQLite) and the lock file"))
    logs: Path = field(default=Path("logs"), metadata=_meta(
        "`acewatchd.jsonl` (rotating) and `acestep.log`"))


@dataclass(frozen=True)
class AceStep:
    root: Path = field(default=Path("~/ACE-Step-1.5"), metadata=_meta(
        "your ACE-Step 1.5 checkout (must contain `checkpoints/`)"))
    url: str = field(default="http://127.0.0.1:7860", metadata=_meta("its Gradio server"))
    python: str = field(default="", metadata=_meta(
        "ACE-Step's interpreter, used for preprocessing; `\"\"` = `<root>/.venv/bin/python`"))
    timeout_seconds: float = field(default=120.0, metadata=_meta(
        "one ordinary API call (training streams are not cut by this)", 1, 86400))
    manage_server: bool = field(default=False, metadata=_meta(
        "`true`: start ACE-Step before the nightly run, restart it between training and"
        " rendering, stop it after"))
    server_command: list[str] = field(
        default_factory=lambda: [
            "uv", "run", "acestep", "--port", "7860", "--init_service", "true", "--backend", "mlx",
        ],
        metadata=_meta("starts a managed server; run in the ACE-Step root"))
    server_env: dict[str, str] = field(default_factory=lambda: {"CHECK_UPDATE": "false"},
                                       metadata=_meta("extra environment for `server_command`"))
    startup_timeout_seconds: float = field(default=600.0, metadata=_meta(
        "how long a managed server may take to answer", 1, 7200))
    start_before_minutes: int = field(default=5, metadata=_meta(
        "start a managed server this long before the nightly run", 0, 120))

    def python_path(self) -> Path:
        return Path(self.python) if self.python else self.root / ".venv" / "bin" / "python"


# What ACE-Step's own preprocessing picks up by extension (training_v2's discovery list), so
# the [watch] extensions default and its limit; ingest/formats.py knows the rest of formats.
ACESTEP_EXTENSIONS: tuple[str, ...] = ("mp3", "wav", "flac", "m4a", "ogg", "opus")


@dataclass(frozen=True)
class Watch:
    settle_seconds: float = field(default=3.0, metadata=_meta(
        "a file must be unchanged this long before it is read", 0, 3600))
    poll_seconds: float = field(default=0.5, metadata=_meta(
        "how often a settling file is looked at", 0.05, 60))
    settle_polls: int = field(default=3, metadata=_meta(
        "... over how many unchanged looks (size, mtime, inode)", 1, 100))
    settle_ceiling_minutes: float = field(default=30.0, metadata=_meta(
        "still changing after this? logged, retried at the next rescan", 0.01, 1440))
    rescan_minutes: float = field(default=5.0, metadata=_meta(
        "full reconciliation scan (file events are only hints)", 0.01, 1440))
    extensions: list[str] = field(
        default_factory=lambda: list(ACESTEP_EXTENSIONS),
        metadata=_meta("audio files picked up (`.MP3` counts as mp3): the formats ACE-Step "
                       "reads, or fewer; other audio files are listed by `status` as skipped"))
    min_duration_seconds: float = field(default=5.0, metadata=_meta(
        "shorter audio is rejected", 0, 36000))
    max_duration_seconds: float = field(default=600.0, metadata=_meta(
        "longer audio is rejected", 1, 36000))

    def extension_problem(self, ext: str) -> str:
        """'' if ACE-Step's preprocessing picks up files with this extension; else why listing
        it does not help (config checks report it)."""
        if ext in ACESTEP_EXTENSIONS:
            return ""
        return (f"ACE-Step's preprocessing does not pick up .{ext} files (it takes "
                f"{', '.join(ACESTEP_EXTENSIONS)}); convert them instead: `acewatchd status` "
                "lists each with the ffmpeg line")


@dataclass(frozen=True)
class Logging:
    level: Literal["debug", "info", "warning", "error"] = field(
        default="info", metadata=_meta("what goes into `logs/acewatchd.jsonl`"))
    max_bytes: int = field(default=10_000_000, metadata=_meta(
        "rotate `logs/acewatchd.jsonl` at this size", 10_000, 10**10))
    backups: int = field(default=5, metadata=_meta("rotated files kept", 0, 100))


@dataclass(frozen=True)
class Preprocess:
    checkpoint_dir: str = field(default="", metadata=_meta(
        "ACE-Step's checkpoints; `\"\"` = `<root>/checkpoints`"))
    variant: Literal["turbo", "base", "sft"] = field(default="turbo", metadata=_meta(
        "the ACE-Step model the tensors are made for"))
    precision: Literal["auto", "fp32", "fp16", "bf16"] = field(default="auto", metadata=_meta(
        "**use `fp32` on Apple Silicon** (see above)"))
    device: Literal["auto", "cuda", "mps", "xpu", "cpu"] = field(default="auto", metadata=_meta(
        "where preprocessing runs"))
    max_duration: float = field(default=240.0, metadata=_meta(
        "seconds of each song used for training", 10, 600))


@dataclass(frozen=True)
class Schedule:
    cron: str = field(default="0 1 * * *", metadata=_meta(
        "when the nightly run starts: standard cron (minute hour day month weekday);"
        " weekday 0 and 7 are Sunday"))
    window_end: str = field(default="07:00", metadata=_meta(
        "training is stopped here (and resumed the next night)",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$", form="HH:MM"))
    timezone: str = field(default="", metadata=_meta(
        "IANA name such as `Europe/Berlin`; `\"\"` = this machine's zone"))
    catch_up: bool = field(default=True, metadata=_meta(
        "missed the start (asleep, off)? run once if the machine wakes (or the daemon starts)"
        " inside the window"))
    require_ac_power: bool = field(default=False, metadata=_meta(
        "macOS: skip or stop training on battery"))
    enabled: bool = field(default=True, metadata=_meta(
        "`false`: only `acewatchd train --now` trains"))
    max_nights: int = field(default=7, metadata=_meta(
        "`status` warns when a run's forecast needs more nights than this", 1, 365))


@dataclass(frozen=True)
class Train:
    rank: int = field(default=64, metadata=_meta(
        "LoRA rank (every `[train]` bound is ACE-Step's own, checked when the file is loaded)",
        4, 256))
    alpha: int = field(default=128, metadata=_meta("LoRA alpha", 4, 512))
    dropout: float = field(default=0.1, metadata=_meta("LoRA dropout", 0.0, 0.5))
    learning_rate: float = field(default=3e-4, metadata=_meta("learning rate", 1e-7, 1.0))
    epochs: int | Literal["auto"] = field(default="auto", metadata=_meta(
        "`\"auto\"` is chosen from the number of songs: 1–5 songs 800, 6–20 700, 21–50 600,"
        " 51+ 500 (after ACE-Step's guidance: about 800 for a handful of songs, about 500 for"
        " a hundred)", 100, 4000))
    batch_size: int = field(default=1, metadata=_meta("songs per training step", 1, 8))
    grad_accum: int = field(default=1, metadata=_meta("gradient accumulation steps", 1, 16))
    save_every: int = field(default=200, metadata=_meta(
        "checkpoint every N epochs: the resume points across nights", 50, 1000))
    shift: float = field(default=3.0, metadata=_meta("ACE-Step's timestep *Shift*", 1.0, 5.0))
    seed: int = field(default=42, metadata=_meta("training seed"))


@dataclass(frozen=True)
class Prompt:
    caption: str = field(default="", metadata=_meta(
        "what to render; `{tag}` becomes the dataset's tag"))
    lyrics: str = field(default="[Instrumental]", metadata=_meta("the clip's lyrics"))
    bpm: int | None = field(default=None, metadata=_meta(
        "tempo; left out, ACE-Step chooses", 30, 300))
    key: str = field(default="", metadata=_meta(
        "key and scale such as `C major`; `\"\"`: ACE-Step chooses"))
    time_signature: Literal["", "2", "3", "4", "6"] = field(default="", metadata=_meta(
        "beats per bar; `\"\"`: ACE-Step chooses"))
    language: str = field(default="unknown", metadata=_meta(
        "vocal language (ISO code); `unknown` = the dataset's `language`"))
    duration: float = field(default=30.0, metadata=_meta("clip length in seconds", 10, 600))
    seed: int = field(default=42, metadata=_meta("the clip's seed"))
    # ACE-Step renders one caption per call, so takes of one prompt are what [render]
    # batch_size batches together.
    seeds: list[int] = field(default_factory=list, metadata=_meta(
        "several takes of this prompt, one clip per seed (replaces `seed`); the takes of a"
        " prompt share generation calls, different prompts never do"))
    name: str = field(default="", metadata=_meta(
        "the clip's name in the outbox; `\"\"` = from the caption"))


def _default_prompts() -> list[Prompt]:
    return [
        Prompt(caption="{tag}, energetic, full band, clear vocals", name="energetic", seed=42),
        Prompt(caption="{tag}, slow ballad, piano, emotional vocals", name="ballad", seed=7),
        Prompt(caption="{tag}, instrumental, acoustic guitar", name="acoustic", seed=1234),
    ]


# Seconds of rendering per second of audio before any render was measured: a cautious figure
# for ACE-Step's turbo model at 8 steps on an Apple-silicon Mac (the first render replaces it).
ESTIMATED_RENDER_PACE = 1.0


@dataclass(frozen=True)
class Render:
    enabled: bool = field(default=True, metadata=_meta(
        "render sample clips with each new LoRA"))
    lora_scale: float = field(default=0.8, metadata=_meta(
        "how strongly the LoRA is applied when `scales` is `[]`", 0.0, 1.0))
    # The grid: every chosen checkpoint at every scale, beside the base model.
    checkpoints: Literal["recent", "last", "all"] | list[int] = field(
        default="recent", metadata=_meta(
            "which adapters of a run are rendered: `\"recent\"` the last three saved"
            " checkpoints and the final adapter, `\"last\"` the final adapter only (the newest"
            " checkpoint while a run is unfinished), `\"all\"` every checkpoint and the final,"
            " or a list of epochs such as `[400, 600]` (the final adapter is always added)"))
    scales: list[float] = field(default_factory=lambda: [0.5, 1.0], metadata=_meta(
        "LoRA scales (0..1) each adapter is rendered at; `[]` = only `lora_scale`"))
    analysis: bool = field(default=True, metadata=_meta(
        "measure the grid: each LoRA clip against its base clip (the \"no audible effect\""
        " alarm) and against your songs (which checkpoint is closest, which may be copying"
        " one); see docs/analysis.md"))
    no_effect_db: float = field(default=2.0, metadata=_meta(
        "a LoRA clip this close to its base clip (log-mel distance in dB) counts as \"no"
        " audible effect\"; calibrated in docs/analysis.md", 0.1, 30.0))
    max_minutes: float = field(default=90.0, metadata=_meta(
        "render time budget per run; when the grid would take longer at the measured speed,"
        " the oldest checkpoints are left out (the page and the log say which)", 1, 1440))
    batch_size: int = field(default=2, metadata=_meta(
        "clips per generation call (ACE-Step allows up to 8 on large machines)", 1, 8))
    compare_base: bool = field(default=True, metadata=_meta(
        "also render each prompt without the LoRA, to hear what it changed"))
    audio_format: Literal["mp3", "flac"] = field(default="mp3", metadata=_meta(
        "the clips' format"))
    steps: int = field(default=8, metadata=_meta("inference steps", 1, 20))
    guidance: float = field(default=7.0, metadata=_meta("guidance scale", 1.0, 15.0))
    prompts: list[Prompt] = field(default_factory=_default_prompts, metadata=_meta(
        "one `[[render.prompts]]` table per prompt (keys below); a dataset's own go in"
        " `[[datasets.<name>.render.prompts]]`"))

    def lora_scales(self) -> list[float]:
        """The scales of the grid's LoRA columns, lowest first, each once."""
        return sorted(set(self.scales)) or [self.lora_scale]


@dataclass(frozen=True)
class Outbox:
    keep_runs: int = field(default=10, metadata=_meta(
        "runs kept per dataset; older ones are removed after a new one is complete", 1, 10000))


@dataclass(frozen=True)
class Notify:
    macos: bool = field(default=True, metadata=_meta(
        "a notification when samples are ready or a run fails (macOS only)"))
    webhook_url: str = field(default="", metadata=_meta(
        "optional ntfy-style URL, POSTed a one-line message"))


@dataclass(frozen=True)
class Service:
    label: str = field(default="com.acewatchd.agent", metadata=_meta(
        "launchd label / systemd unit name stem"))
    throttle_seconds: int = field(default=30, metadata=_meta(
        "launchd `ThrottleInterval`", 1, 3600))


@dataclass(frozen=True)
class Dataset:
    tag: str = field(default="", metadata=_meta("trigger word added to every caption"))
    tag_position: Literal["prepend", "append", "replace"] = field(
        default="prepend", metadata=_meta("where the tag goes in a caption"))
    instrumental: bool = field(default=False, metadata=_meta(
        "`true`: lyrics stubs say `[Instrumental]`"))
    language: str = field(default="unknown", metadata=_meta(
        "vocal language (ISO code) or `unknown`"))
    tag_encoding: str = field(default="", metadata=_meta(
        "legacy byte encoding of latin-1-marked tags (e.g. `cp949`); empty = by `language`,"
        " else guessed"))
    caption_template: str = field(
        default="{tag}, {genre}, {decade}, {artist} style, {bpm}, {key}",
        metadata=_meta("caption stubs; fields: tag, title, artist, album, genre, decade, year,"
                       " bpm, key"))
    genre: str = field(default="", metadata=_meta("used when a file has no genre tag"))
    bpm: int | None = field(default=None, metadata=_meta(
        "used when a file has no tempo tag", 30, 300))
    keyscale: str = field(default="", metadata=_meta("used when a file has no key tag"))
    timesignature: Literal["", "2", "3", "4", "6"] = field(default="", metadata=_meta(
        "used when a file has no time signature"))
    genre_ratio: int = field(default=0, metadata=_meta(
        "ACE-Step's *Genre Ratio (%)* for this dataset", 0, 100))
    enabled: bool = field(default=True, metadata=_meta(
        "`false`: this folder is left out of the nightly run"))
    # Per-dataset overrides: any subset of the top-level tables' keys.
    train: dict[str, Any] = field(default_factory=dict, metadata=_meta(
        "any `[train]` key, for this dataset only", override=Train))
    schedule: dict[str, Any] = field(default_factory=dict, metadata=_meta(
        "any `[schedule]` key, for this dataset only", override=Schedule))
    render: dict[str, Any] = field(default_factory=dict, metadata=_meta(
        "any `[render]` key (prompts too), for this dataset only", override=Render))


@dataclass(frozen=True)
class Config:
    paths: Paths = field(default_factory=Paths)
    acestep: AceStep = field(default_factory=AceStep)
    watch: Watch = field(default_factory=Watch)
    logging: Logging = field(default_factory=Logging)
    preprocess: Preprocess = field(default_factory=Preprocess)
    schedule: Schedule = field(default_factory=Schedule)
    train: Train = field(default_factory=Train)
    render: Render = field(default_factory=Render)
    outbox: Outbox = field(default_factory=Outbox)
    notify: Notify = field(default_factory=Notify)
    service: Service = field(default_factory=Service)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    # Where the file was read from (not a TOML key).
    source: Path | None = field(default=None, metadata={"internal": True})

    def dataset(self, name: str) -> Dataset:
        """Settings for a drop folder; folders not named in config get the defaults."""
        return self.datasets.get(name, Dataset())

    def train_for(self, name: str) -> Train:
        return replace(self.train, **self.dataset(name).train)

    def schedule_for(self, name: str) -> Schedule:
        return replace(self.schedule, **self.dataset(name).schedule)

    def render_for(self, name: str) -> Render:
        return replace(self.render, **self.dataset(name).render)

    @property
    def home(self) -> Path:
        return self.source.parent if self.source else Path.cwd()
