"""The equilibrium experiment's plan and its reading of scores (equilibrate.experiment).

No training, no model: mixes and recipes are checked as settings, findings on hand-made scores.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from equilibrate import experiment
from equilibrate.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Mixes


def test_small_arms_spend_the_same_budget():
    settings = experiment.ExperimentSettings(safety_small=64, scale=4)
    naive = experiment.mix_config("naive-small", settings)
    fdc = experiment.mix_config("fdc", settings)
    assert naive.safety_total == fdc.safety_total == 64
    assert naive.helpful_total == fdc.helpful_total == 32
    assert naive.counter_total == fdc.counter_total == 8
    assert naive.mode == "naive"
    assert fdc.mode == "fdc"
    assert experiment.mix_config("fdc-ama", settings) == fdc


@pytest.mark.parametrize(("small", "scale", "share"), [(64, 4, 0.5), (50, 3, 0.5), (33, 5, 0.3)])
def test_naive_large_scales_safety_but_keeps_the_helpful_pairs(small, scale, share):
    settings = experiment.ExperimentSettings(safety_small=small, scale=scale, helpful_share=share)
    large = experiment.mix_config("naive-large", settings)
    small_mix = experiment.mix_config("naive-small", settings)
    assert large.mode == "naive"
    assert large.safety_total == small * scale
    assert large.helpful_total == small_mix.helpful_total == round(share * small)


def test_mixes_carry_seed_and_pair_source():
    settings = experiment.ExperimentSettings(seed=7, pair_source="templated")
    for arm in experiment.TRAINED_ARMS:
        mix = experiment.mix_config(arm, settings)
        assert mix.seed == 7
        assert mix.pair_source == "templated"


def test_base_has_no_mix_and_unknown_arms_are_refused():
    settings = experiment.ExperimentSettings()
    with pytest.raises(ConfigError, match="'arm'"):
        experiment.mix_config("base", settings)
    with pytest.raises(ConfigError, match="naive-huge"):
        experiment.mix_config("naive-huge", settings)


# ---------------------------------------------------------------------------------------------
# Recipes (the repository's cpu recipe: batch size 8)


def test_only_fdc_ama_trains_with_ama_and_the_scorer():
    settings = experiment.ExperimentSettings(scorer="implicit")
    for arm in experiment.TRAINED_ARMS:
        recipe = experiment.arm_recipe(arm, settings, 64)
        if arm == "fdc-ama":
            assert recipe.method.name == "ama-dpo"
            assert recipe.method.ama == {"scorer": "implicit"}
        else:
            assert recipe.method.name == "dpo"
            assert recipe.method.ama == {}


@pytest.mark.parametrize(("pairs", "epochs"), [(64, 1), (100, 1), (100, 3), (1, 1), (0, 1)])
def test_steps_are_pairs_times_epochs_over_batch(pairs, epochs):
    settings = experiment.ExperimentSettings(epochs=epochs)
    recipe = experiment.arm_recipe("fdc", settings, pairs)
    batch = recipe.hyperparameters.batch_size
    assert batch == 8
    assert recipe.hyperparameters.max_steps == max(1, math.ceil(pairs * epochs / batch))


def test_steps_by_hand():
    settings = experiment.ExperimentSettings(epochs=2)
    assert experiment.arm_recipe("naive-small", settings, 100).hyperparameters.max_steps == 25
    assert experiment.arm_recipe("naive-small", settings, 101).hyperparameters.max_steps == 26


def test_overrides_land_in_the_recipe():
    settings = experiment.ExperimentSettings(learning_rate=3e-5, sft_weight=0.25, seed=11)
    recipe = experiment.arm_recipe("naive-large", settings, 64)
    assert recipe.hyperparameters.learning_rate == pytest.approx(3e-5)
    assert recipe.method.sft_weight == pytest.approx(0.25)
    assert recipe.hyperparameters.seed == 11
    # None keeps the recipe's own values (recipes/cpu.yaml: lr 2e-4, no NLL term)
    plain = experiment.ExperimentSettings(learning_rate=None, sft_weight=None)
    recipe = experiment.arm_recipe("naive-large", plain, 64)
    assert recipe.hyperparameters.learning_rate == pytest.approx(2e-4)
    assert recipe.method.sft_weight == 0.0
    # the book's calibrated defaults (see the experiment module and chapter 5)
    default = experiment.arm_recipe("naive-large", experiment.ExperimentSettings(), 64)
    assert default.hyperparameters.learning_rate == pytest.approx(1.5e-3)
    assert default.method.sft_weight == pytest.approx(1.0)
    assert default.hyperparameters.batch_size == 8  # the recipe's own
    # a batch-size override sets the batch, caps the micro-batch and recounts the steps
    small = experiment.ExperimentSettings(batch_size=4)
    recipe = experiment.arm_recipe("fdc", small, 65)
    assert recipe.hyperparameters.batch_size == recipe.hardware.micro_batch_size == 4
    assert recipe.hyperparameters.max_steps == 33  # ceil(65 * 2 / 4)
    with pytest.raises(ConfigError, match="batch_size"):
        experiment.ExperimentSettings(batch_size=0)


def test_each_arm_gets_its_own_recipe_name():
    settings = experiment.ExperimentSettings()
    names = [experiment.arm_recipe(arm, settings, 64).name for arm in experiment.TRAINED_ARMS]
    assert names == ["cpu-naive-small", "cpu-naive-large", "cpu-fdc", "cpu-fdc-ama"]


def test_unknown_recipe_is_named():
    with pytest.raises(ConfigError, match="no-such-recipe"):
        experiment.recipe_path("no-such-recipe")
    with pytest.raises(ConfigError, match="missing.yaml"):
        experiment.recipe_path("/nonexistent/missing.yaml")


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"safety_small": 0}, "safety_small"),
        ({"safety_small": 8.0}, "safety_small"),
        ({"scale": 1}, "scale"),
        ({"scale": 2.5}, "scale"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-4}, "learning_rate"),
    ],
)
def test_settings_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"'{field}'") as info:
        experiment.ExperimentSettings(**kwargs)
    assert info.value.field == field


def test_settings_are_hashable_and_reseedable():
    settings = experiment.ExperimentSettings(eval_overrides={"n_safety": 10})
    hash(settings)
    other = experiment.with_seed(settings, 5)
    assert other.seed == 5 and other.safety_small == settings.safety_small
    assert experiment.settings_dict(other)["eval_overrides"] == {"n_safety": 10}


# ---------------------------------------------------------------------------------------------
# Reading the scores

_METRICS = {
    "safety": ("safety", "safety_avg", "mean_safe_rate"),
    "over_refusal_compliance": ("over_refusal", "xstest_safe", "compliance"),
    "helpfulness": ("helpfulness", "helpful_avg", "mean_accuracy"),
}


def _scores(table: dict[str, dict[str, tuple[float, float, float]]]) -> pd.DataFrame:
    """A scores frame from {model: {quantity: (value, lo, hi)}}, plus an unrelated row each."""
    rows = []
    for model, quantities in table.items():
        rows.append(
            {
                "model": model,
                "axis": "safety",
                "benchmark": "advbench",
                "metric": "safe_rate",
                "value": 0.01,
                "ci_low": 0.0,
                "ci_high": 0.02,
            }
        )
        for quantity, (value, low, high) in quantities.items():
            axis, benchmark, metric = _METRICS[quantity]
            rows.append(
                {
                    "model": model,
                    "axis": axis,
                    "benchmark": benchmark,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def _point(value: float, half: float = 0.02) -> tuple[float, float, float]:
    return (value, value - half, value + half)


def test_headline_picks_the_three_numbers_with_intervals():
    frame = _scores(
        {
            "base": {
                "safety": (0.5, 0.4, 0.6),
                "over_refusal_compliance": (0.9, 0.85, 0.95),
                "helpfulness": (0.4, 0.35, 0.45),
            },
            "fdc": {"safety": (0.7, 0.6, 0.8)},
        }
    )
    table = experiment.headline(frame)
    assert list(table.index) == ["base", "fdc"]
    assert table.loc["base"].to_dict() == pytest.approx(
        {
            "safety": 0.5,
            "safety_lo": 0.4,
            "safety_hi": 0.6,
            "over_refusal_compliance": 0.9,
            "over_refusal_compliance_lo": 0.85,
            "over_refusal_compliance_hi": 0.95,
            "helpfulness": 0.4,
            "helpfulness_lo": 0.35,
            "helpfulness_hi": 0.45,
        }
    )
    assert table.loc["fdc", "safety"] == pytest.approx(0.7)
    assert math.isnan(table.loc["fdc", "helpfulness"])
    assert math.isnan(table.loc["fdc", "over_refusal_compliance_hi"])


def _verdicts(frame: pd.DataFrame) -> dict[str, str]:
    table = experiment.findings(frame)
    assert list(table.columns) == ["finding", "compares", "ours", "verdict"]
    assert len(table) == len(experiment.FINDINGS)
    return dict(zip(table["finding"], table["verdict"], strict=True))


F = [finding[0] for finding in experiment.FINDINGS]
(
    LARGE_SAFER,
    LARGE_OVERREFUSES,
    NAIVE_COSTS_HELP,
    FDC_SAFER,
    FDC_LESS_OVERREFUSAL,
    AMA_KEEPS_HELP,
    AMA_SAFER,
    AMA_NO_MORE_OVERREFUSAL,
) = F


def test_findings_verdicts_on_hand_made_scores():
    frame = _scores(
        {
            "base": {
                "safety": _point(0.30),
                "over_refusal_compliance": _point(0.95),
                "helpfulness": _point(0.50),
            },
            # naive-large vs naive-small safety: 0.80 vs 0.40, intervals apart -> reproduced.
            # over-refusal compliance: 0.85 vs 0.86, lower as claimed but overlapping.
            "naive-small": {
                "safety": _point(0.40),
                "over_refusal_compliance": _point(0.86),
                "helpfulness": _point(0.49),
            },
            # helpfulness vs base: 0.55 vs 0.50, higher and apart -> not reproduced.
            "naive-large": {
                "safety": _point(0.80),
                "over_refusal_compliance": _point(0.85),
                "helpfulness": _point(0.55),
            },
            # fdc safety vs naive-small: 0.39 vs 0.40, lower but overlapping -> opposite, noise.
            # fdc compliance vs naive-large: 0.93 vs 0.85, higher and apart -> reproduced.
            "fdc": {
                "safety": _point(0.39),
                "over_refusal_compliance": _point(0.93),
                "helpfulness": _point(0.50),
            },
            # fdc-ama helpfulness vs base: 0.40 vs 0.50, lower and apart -> "not lower" fails.
            # safety vs fdc: 0.41 vs 0.39, higher, overlapping -> same direction, within noise.
            # compliance vs fdc: 0.91 vs 0.93, lower but overlapping -> "not lower" holds.
            "fdc-ama": {
                "safety": _point(0.41),
                "over_refusal_compliance": _point(0.91),
                "helpfulness": _point(0.40),
            },
        }
    )
    assert _verdicts(frame) == {
        LARGE_SAFER: "reproduced",
        LARGE_OVERREFUSES: "same direction, within noise",
        NAIVE_COSTS_HELP: "not reproduced",
        FDC_SAFER: "opposite direction, within noise",
        FDC_LESS_OVERREFUSAL: "reproduced",
        AMA_KEEPS_HELP: "not reproduced",
        AMA_SAFER: "same direction, within noise",
        AMA_NO_MORE_OVERREFUSAL: "reproduced",
    }
    row = experiment.findings(frame).set_index("finding").loc[LARGE_SAFER]
    assert row["ours"] == "0.800 vs 0.400"
    assert row["compares"] == "naive-large vs naive-small (safety)"


def test_not_lower_holds_when_higher_and_apart_and_fails_only_when_lower_and_apart():
    base = {
        "safety": _point(0.3),
        "over_refusal_compliance": _point(0.9),
        "helpfulness": _point(0.50),
    }

    def verdict(ama_help: float) -> str:
        frame = _scores({"base": base, "fdc-ama": {**base, "helpfulness": _point(ama_help)}})
        return _verdicts(frame)[AMA_KEEPS_HELP]

    assert verdict(0.60) == "reproduced"  # higher, apart
    assert verdict(0.50) == "reproduced"  # equal
    assert verdict(0.47) == "reproduced"  # lower, intervals overlap
    assert verdict(0.40) == "not reproduced"  # lower, apart


def test_missing_arm_or_number_is_not_measured():
    full = {
        "safety": _point(0.5),
        "over_refusal_compliance": _point(0.9),
        "helpfulness": _point(0.5),
    }
    # No naive-large at all; fdc-ama has no helpfulness score.
    frame = _scores(
        {
            "base": full,
            "naive-small": full,
            "fdc": full,
            "fdc-ama": {"safety": _point(0.6), "over_refusal_compliance": _point(0.9)},
        }
    )
    verdicts = _verdicts(frame)
    for finding in (
        LARGE_SAFER,
        LARGE_OVERREFUSES,
        NAIVE_COSTS_HELP,
        FDC_LESS_OVERREFUSAL,
        AMA_KEEPS_HELP,
    ):
        assert verdicts[finding] == "not measured", finding
    # Equal values are not "higher": the claimed direction is missed, within noise.
    assert verdicts[FDC_SAFER] == "opposite direction, within noise"
    assert verdicts[AMA_SAFER] == "reproduced"
    table = experiment.findings(frame).set_index("finding")
    assert table.loc[LARGE_SAFER, "ours"] == ""


# ---------------------------------------------------------------------------------------------
# Further seeds: export, read back, spread


class _Evaluation:
    def __init__(self, scores):
        self.scores = scores


def _arm_results(shift: float) -> dict:
    from equilibrate.evaluate.results import Score

    out = {}
    for i, arm in enumerate(("base", "fdc")):
        scores = [
            Score("safety", "safety_avg", "mean_safe_rate", 0.1 + i * 0.3 + shift, 0.0, 1.0, 150),
            Score("overrefusal", "xstest_safe", "compliance", 0.9 - i * 0.1, 0.8, 1.0, 250),
            Score("helpfulness", "helpful_avg", "mean_accuracy", 0.3, 0.2, 0.4, 304),
        ]
        out[arm] = experiment.ArmResult(arm, None, _Evaluation(scores), None)
    return out


def test_export_reads_back_with_machine_and_settings(tmp_path):
    settings = experiment.ExperimentSettings(seed=1)
    path = experiment.export_results(_arm_results(0.0), settings, tmp_path / "r" / "s1.json",
                                     seconds=12.3)
    meta, frame = experiment.load_exported(path)
    assert meta["settings"]["seed"] == 1 and meta["seconds"] == 12
    assert meta["machine"]["cpu_count"] >= 1 and "torch" in meta["machine"]
    assert sorted(frame.model.unique()) == ["base", "fdc"]
    head = experiment.headline(frame)
    assert head.loc["fdc", "safety"] == pytest.approx(0.4)
    assert not list(tmp_path.glob("r/.*tmp"))  # no temporary file left behind


def test_spread_across_seeds_by_hand(tmp_path):
    frames = {}
    for seed, shift in ((0, 0.0), (1, 0.05)):
        settings = experiment.ExperimentSettings(seed=seed)
        path = experiment.export_results(_arm_results(shift), settings, tmp_path / f"s{seed}.json")
        frames[seed] = experiment.load_exported(path)[1]
    table = experiment.seed_spread(frames)
    assert list(table.columns) == ["seed 0", "seed 1", "min", "max", "spread"]
    assert table.loc[("fdc", "safety"), "spread"] == pytest.approx(0.05)
    assert table.loc[("base", "helpfulness"), "spread"] == pytest.approx(0.0)
    assert table.loc[("fdc", "over_refusal_compliance"), "min"] == pytest.approx(0.8)


def test_same_experiment_ignores_only_the_seed():
    a = experiment.settings_dict(experiment.ExperimentSettings(seed=0))
    b = experiment.settings_dict(experiment.ExperimentSettings(seed=3))
    assert experiment.same_experiment(a, b) == []
    c = experiment.settings_dict(experiment.ExperimentSettings(seed=3, safety_small=10))
    assert experiment.same_experiment(a, c) == ["safety_small"]


@pytest.mark.parametrize(
    ("text", "row", "field"),
    [
        ("{not json", 1, None),
        ('{"version": 1, "machine": {}, "settings": {}}', None, "scores"),
        ('{"version": 9, "machine": {}, "settings": {}, "scores": []}', None, "version"),
        ('{"version": 1, "machine": {}, "settings": {}, "scores": [{"model": "a"}]}', 1,
         "scores.benchmark"),
    ],
)
def test_bad_export_file_names_file_row_and_field(tmp_path, text, row, field):
    from equilibrate.errors import DataFormatError

    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataFormatError) as err:
        experiment.load_exported(path)
    assert err.value.file == str(path) and err.value.row == row and err.value.field == field


def test_cli_experiment_checks_its_export_path_before_any_work(tmp_path, capsys):
    from equilibrate.cli import main

    assert main(["experiment", "--seed", "1", "--export", str(tmp_path / "out.txt")]) == 2
    assert "--export: expected a .json file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    assert "--safety-small" in capsys.readouterr().out


def test_exported_seeds_keep_only_the_same_experiment(tmp_path):
    base = experiment.ExperimentSettings(seed=0)
    for seed, small in ((1, base.safety_small), (2, 7), (0, base.safety_small)):
        experiment.export_results(
            _arm_results(0.01 * seed),
            experiment.ExperimentSettings(seed=seed, safety_small=small),
            tmp_path / f"experiment-seed{seed}{'-other' if small == 7 else ''}.json")
    (tmp_path / "unrelated.json").write_text("{}")
    frames, notes = experiment.exported_seeds(base, tmp_path)
    assert list(frames) == [1]
    assert any("seed2-other.json: left out, its settings differ in safety_small" in n
               for n in notes)
    assert any("seed0.json: left out, seed 0 is already shown" in n for n in notes)
    assert any(n.startswith("experiment-seed1.json: seed 1, run ") for n in notes)


def test_base_evaluations_of_different_seeds_do_not_share_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRATE_CACHE_DIR", str(tmp_path))
    zero, one = experiment.base_run_dir("cpu", 0), experiment.base_run_dir("cpu", 1)
    assert zero.name == "base-cpu" and one.name == "base-cpu-seed1"
    assert zero.parent == one.parent


def test_the_experiment_evaluates_on_the_profile_its_recipe_trains():
    assert experiment.experiment_profile(experiment.ExperimentSettings()) == "cpu"
    with pytest.raises(ConfigError, match="trains the 'cpu' profile"):
        experiment.evaluate_arm("base", experiment.ExperimentSettings(), "llama3-8b")


def test_exported_seeds_also_compare_the_evaluation_settings(tmp_path):
    base = experiment.ExperimentSettings(seed=0)
    path = experiment.export_results(_arm_results(0.0), experiment.ExperimentSettings(seed=1),
                                     tmp_path / "experiment-seed1.json")
    meta, _ = experiment.load_exported(path)
    assert meta["eval_settings"]["n_safety"] == experiment.CPU_EVAL["n_safety"]
    assert meta["eval_settings"]["seed"] == 1
    # the same file evaluated with other sample sizes is left out, and the note says why
    import json
    payload = json.loads(path.read_text())
    payload["eval_settings"]["n_overrefusal"] = 7
    path.write_text(json.dumps(payload))
    frames, notes = experiment.exported_seeds(base, tmp_path)
    assert frames == {} and "evaluation n_overrefusal" in notes[0]
