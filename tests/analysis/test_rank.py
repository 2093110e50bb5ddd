"""Columns, ranking, the copying flag and the advice from per-clip figures (no audio)."""

from __future__ import annotations

from acewatchd.analysis.rank import ClipFigures, rank
from acewatchd.analysis.schema import ClipJob, parse_report

SONGS = ("Exodus.mp3", "Bolero.mp3", "Cantus.mp3")


def clip(prompt: str, seed: int, checkpoint: str = "base", scale: float | None = None) -> ClipJob:
    epoch = int(checkpoint.split("_")[1]) if checkpoint.startswith("epoch_") else None
    return {"id": f"{prompt}-{seed}-{checkpoint}-{scale}", "prompt": prompt, "seed": seed,
            "variant": "base" if checkpoint == "base" else "lora", "checkpoint": checkpoint, "epoch": epoch, "scale": scale,
            "path": f"/clips/{prompt}-{seed}-{checkpoint}.mp3"}


def songs(exodus: float, bolero: float, cantus: float) -> dict[str, float]:
    return dict(zip(SONGS, (exodus, bolero, cantus), strict=True))


def grid() -> list[ClipFigures]:
    """epoch_4 far; epoch_8 near all three songs; epoch_12 on top of Exodus."""
    out = []
    for prompt in ("calm", "loud"):
        out.append(ClipFigures(clip(prompt, 1), None, songs(20, 21, 22)))
        out.append(ClipFigures(clip(prompt, 1, "epoch_4", 1.0), 30.0, songs(16, 17, 18)))
        out.append(ClipFigures(clip(prompt, 1, "epoch_8", 1.0), 35.0, songs(9, 10, 10)))
        out.append(ClipFigures(clip(prompt, 1, "epoch_12", 1.0), 25.0, songs(1.5, 14, 14)))
    return out


def test_closest_column_ranks_first_and_the_copy_is_flagged_and_ranked_last() -> None:
    r = rank(grid(), threshold=2.0, spread=12.0)
    by = {c["checkpoint"]: c for c in r.columns}
    assert [c["checkpoint"] for c in r.columns] == ["epoch_4", "epoch_8", "epoch_12"]
    # epoch_12 is nearer the songs than epoch_4 (14 against 17.5 leaving out each clip's
    # nearest song) but copies Exodus: it ranks after the others
    assert by["epoch_12"]["closeness"] is not None and by["epoch_8"]["closeness"] is not None
    assert by["epoch_12"]["closeness"] < by["epoch_4"]["closeness"]  # type: ignore[operator]
    assert (by["epoch_8"]["rank"], by["epoch_4"]["rank"], by["epoch_12"]["rank"]) == (1, 2, 3)
    assert by["epoch_12"]["copying"] == {"song": "Exodus.mp3", "ratio": 0.125}
    assert by["epoch_8"]["copying"] is None and by["epoch_4"]["copying"] is None
    assert by["epoch_8"]["effect"] == 35.0 and not r.no_effect
    assert r.advice == ("closest to your songs: epoch 8; epoch 12 may be copying 'Exodus.mp3'")
    assert [c["nearest_song"] for c in r.clips[:4]] == ["Exodus.mp3"] * 4
    assert r.clips[0]["effect"] is None and r.clips[1]["effect"] == 30.0


def test_the_report_shape_validates() -> None:
    r = rank(grid(), threshold=2.0, spread=12.0)
    report = {"format": 1, "descriptor": "logmel-stats-v1", "no_effect_threshold": 2.0,
              "columns": r.columns, "clips": r.clips, "no_effect": r.no_effect,
              "advice": r.advice, "seconds": 0.5}
    assert parse_report(report) == report


def test_every_column_without_effect_is_the_runs_alarm() -> None:
    figures = [ClipFigures(clip("calm", 1), None, songs(20, 21, 22)),
               ClipFigures(clip("calm", 1, "epoch_8", 0.5), 0.3, songs(20, 21, 22)),
               ClipFigures(clip("calm", 1, "final", 1.0), 0.0, songs(20, 21, 22))]
    r = rank(figures, threshold=2.0, spread=12.0)
    assert r.no_effect and all(c["no_effect"] for c in r.columns)
    assert r.advice.startswith("no audible effect: every LoRA clip sounds like its base clip")
    assert "scale" in r.advice and "not applied" in r.advice and "epochs" in r.advice


def test_one_silent_column_is_named_and_ranked_after_the_others() -> None:
    figures = [ClipFigures(clip("calm", 1), None, songs(20, 21, 22)),
               ClipFigures(clip("calm", 1, "final", 0.5), 0.4, songs(20, 21, 22)),
               ClipFigures(clip("calm", 1, "final", 1.0), 12.0, songs(15, 16, 17))]
    r = rank(figures, threshold=2.0, spread=12.0)
    half, full = r.columns
    assert half["no_effect"] and not full["no_effect"] and not r.no_effect
    assert (full["rank"], half["rank"]) == (1, 2)
    assert r.advice == ("closest to your songs: final at scale 1; "
                        "no audible effect: final at scale 0.5")


def test_a_clip_without_its_base_clip_has_no_effect_figure() -> None:
    figures = [ClipFigures(clip("calm", 1, "final", 1.0), None, songs(5, 6, 7))]
    r = rank(figures, threshold=2.0, spread=12.0)
    assert r.columns[0]["effect"] is None and not r.columns[0]["no_effect"]


def test_one_training_song_measures_copying_against_the_base_clips() -> None:
    base = ClipFigures(clip("calm", 1), None, {"Only.mp3": 20.0})
    near = ClipFigures(clip("calm", 1, "epoch_8", 1.0), 9.0, {"Only.mp3": 10.0})
    copy = ClipFigures(clip("calm", 1, "epoch_12", 1.0), 9.0, {"Only.mp3": 2.0})
    r = rank([base, near, copy], threshold=2.0, spread=None)
    assert r.columns[0]["copying"] is None
    assert r.columns[1]["copying"] == {"song": "Only.mp3", "ratio": 0.1}
    assert r.columns[0]["rank"] == 1


def test_no_training_songs_no_ranking() -> None:
    figures = [ClipFigures(clip("calm", 1), None, {}),
               ClipFigures(clip("calm", 1, "final", 1.0), 9.0, {})]
    r = rank(figures, threshold=2.0, spread=None)
    assert r.columns[0]["rank"] is None and r.columns[0]["closeness"] is None
    assert r.clips[1]["nearest_song"] is None
    assert r.advice == "no training songs to compare with"


def test_no_lora_clips() -> None:
    r = rank([ClipFigures(clip("calm", 1), None, {})], threshold=2.0, spread=None)
    assert r.columns == [] and not r.no_effect and r.advice == "no LoRA clips to compare"
