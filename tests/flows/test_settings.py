from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from flows.settings import load_settings
from models.demand import block_floors, feature_spec


def test_defaults_are_usable() -> None:
    s = load_settings()
    assert s.horizon == 28
    # every horizon block's model keeps own-history lags that need no forecast of its own days
    for floor in block_floors(s.horizon, s.model.horizon_blocks):
        spec = feature_spec(s.demand(), pl.DataFrame(), floor=floor)
        assert spec.lags and min(spec.lags) >= floor


def test_env_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALSHELF_HORIZON", "14")
    monkeypatch.setenv("LOCALSHELF_MODEL__NUM_LEAVES", "15")
    monkeypatch.setenv("LOCALSHELF_HMAC_SECRET", "s3cr3t-value")
    s = load_settings()
    assert (s.horizon, s.model.num_leaves) == (14, 15)
    assert s.hmac_secret is not None and s.hmac_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s)


def test_toml_file_and_explicit_overrides(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "ls.toml"
    cfg.write_text('horizon = 7\nas_of = "2025-01-31"\n[mining]\nfdr_alpha = 0.01\n')
    monkeypatch.setenv("LOCALSHELF_CONFIG", str(cfg))
    s = load_settings(horizon=21, as_of=None)
    assert s.horizon == 21  # explicit wins over the file
    assert s.as_of == date(2025, 1, 31)
    assert s.mining.fdr_alpha == 0.01


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALSHELF_HORIZON", "0")
    with pytest.raises(ValueError, match="horizon"):
        load_settings()
