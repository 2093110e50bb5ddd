"""ledger/samples.py: sample rows as SampleRow, the coalescing upsert, forgetting songs that
left the dataset."""

from __future__ import annotations

from pathlib import Path

from acewatchd.ledger import samples
from acewatchd.ledger.db import Ledger


def test_set_sample_keeps_inputs_and_precision_when_not_given(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    sha = "0123456789abcdef" * 4
    samples.set_sample(ledger, "ds", sha, status="preprocessed", inputs="h1", precision="bf16")
    samples.set_sample(ledger, "ds", sha, status="excluded", reason="NaN in target_latents")
    row = samples.sample_rows(ledger, "ds")[sha]
    assert (row.sample_id, row.status, row.inputs_hash, row.precision, row.reason) == (
        "01234567", "excluded", "h1", "bf16", "NaN in target_latents")
    samples.set_sample(ledger, "ds", sha, status="preprocessed", inputs="h2")
    row = samples.sample_rows(ledger, "ds")[sha]
    assert (row.status, row.inputs_hash, row.reason) == ("preprocessed", "h2", None)
    assert samples.sample_rows(ledger, "other") == {}
    ledger.close()


def test_forget_missing_drops_only_the_dataset_s_other_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for ds, sha in (("ds", "aa" * 32), ("ds", "bb" * 32), ("other", "bb" * 32)):
        samples.set_sample(ledger, ds, sha, status="staged")
    samples.forget_missing(ledger, "ds", {"aa" * 32})
    assert list(samples.sample_rows(ledger, "ds")) == ["aa" * 32]
    assert list(samples.sample_rows(ledger, "other")) == ["bb" * 32]
    ledger.close()
