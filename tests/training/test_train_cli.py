"""busapp-train's sub-parsers: each subcommand takes its own options, and fit / loso-fit hand the
recipe they were given to the training code (no TensorFlow needed: the training call is replaced)."""

import json

import pytest

from busapp.training import cli


def test_every_subcommand_has_its_own_help(capsys):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert {"split", "train", "fit", "finalize", "evaluate", "compare", "cv-report", "site-report",
            "extract-members", "select-rules", "loso-fit"} == set(sub.choices)
    for name, parser in sub.choices.items():
        text = parser.format_help()
        assert f"busapp-train {name}" in text
    assert "--augment" in sub.choices["fit"].format_help() and "--augment" not in sub.choices["finalize"].format_help()
    assert "--rules-from" in sub.choices["finalize"].format_help() and "--rules-from" not in sub.choices["fit"].format_help()
    assert "--held-out" in sub.choices["loso-fit"].format_help()


def test_fit_passes_its_recipe_and_records_to_fit(monkeypatch, tmp_path, data_root):
    import busapp.training.fit as fit_module

    calls = []
    monkeypatch.setattr(fit_module, "fit", lambda train, val, root, work, cfg, keep_last=False, run_eagerly=False:
                        calls.append((len(train), len(val), work, cfg, keep_last, run_eagerly)))
    assert cli.main(["fit", "--data", str(data_root), "--work-dir", str(tmp_path / "w"), "--limit", "4", "--size", "96",
                     "--augment", "domain", "--lesion-pool", "--frozen-blocks", "2", "--train-datasets", "busi"]) == 0
    n_train, n_val, work, cfg, keep_last, eager = calls[0]
    assert (n_train, n_val, work, keep_last, eager) == (4, 4, tmp_path / "w", False, False)
    assert (cfg.size, cfg.augment, cfg.lesion_pool, cfg.frozen_blocks, cfg.datasets) == (96, "domain", True, 2, ("busi",))
    assert cli.main(["fit", "--data", str(data_root), "--work-dir", str(tmp_path / "f"), "--limit", "4",
                     "--folds", "2", "--fold", "1", "--run-eagerly"]) == 0
    assert calls[1][0] + calls[1][1] == 8 and calls[1][4] is True and calls[1][5] is True
    assert json.loads((tmp_path / "f" / "cv.json").read_text()) == {"folds": 2, "fold": 1}
    with pytest.raises(SystemExit):
        cli.main(["fit", "--data", str(data_root), "--folds", "2", "--fold", "2"])


def test_loso_fit_forwards_to_the_leads_module(monkeypatch, tmp_path, data_root):
    import busapp.training.loso as loso

    calls = []
    monkeypatch.setattr(loso, "loso_fit", lambda held_out, root, work, cfg, split_file, limit, run_eagerly=False:
                        calls.append((held_out, work, cfg, limit)))
    assert cli.main(["loso-fit", "--held-out", "bus_uclm", "--work-dir", str(tmp_path), "--recipe", "R3",
                     "--epochs", "1", "--limit", "5", "--data", str(data_root)]) == 0
    held_out, work, cfg, limit = calls[0]
    assert (held_out, work, limit) == ("bus_uclm", tmp_path, 5)
    assert cfg.size == loso.RECIPES["R3"].size and cfg.epochs == 1 and cfg.augment == loso.RECIPES["R3"].augment
    assert cli.main(["loso-fit", "--work-dir", str(tmp_path), "--data", str(data_root)]) == 0
    assert calls[1][0] is None and calls[1][2] == loso.RECIPES["R1"]  # every site, the recipe as fixed
