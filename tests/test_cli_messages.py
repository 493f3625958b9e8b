"""The CLI names flags where the stages name Python parameters (`folds=3` -> --folds 3)."""

from __future__ import annotations

import pytest

from layergain.cli import cli_message, main


@pytest.mark.parametrize(
    "message, expected",
    [
        ("Use `folds=3` or fewer, or another `group_column=NAME`.", "Use --folds 3 or fewer, or another --group-column NAME."),
        ("no CUDA GPU is available; use `device='cpu'`.", "no CUDA GPU is available; use --device cpu."),
        ("or pass `skip_bad_images=True`.", "or pass --skip-bad-images."),
        ("probe with `layers=[NAME, NAME, …]`.", "probe with --layers NAME,NAME,…."),
        ("Choose a writable folder, `out=DIR`.", "Choose a writable folder, --out DIR."),
        ("`cache=DIR`, `weights=FILE`, `data_card=FILE`", "--cache DIR, --weights FILE, --data-card FILE"),
        # not a setting of the CLI, or a name without a value: as it is
        ("`kind='debiased'` or `folds` must be >= 2", "`kind='debiased'` or `folds` must be >= 2"),
    ],
)
def test_parameters_become_flags(message, expected):
    assert cli_message(message) == expected


def test_cli_error_names_the_flag(tmp_path, capsys):
    code = main(["run", "--max-per-class", "2", "--folds", "5", "--out", str(tmp_path / "o"),
                 "--cache", str(tmp_path / "c"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "fewer than the 5 folds" in err[0] and "Use --folds 2 or fewer" in err[0] and "`folds=" not in err[0]
