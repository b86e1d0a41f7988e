"""The analyses on a briefly trained model against an untrained one: the scientific content.

The trained model comes from the session fixture in conftest.py (a 3-item DaleRNN trained for
300 iterations). Tolerances are standard errors of the quantities compared.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis.__main__ import main as analysis_main
from analysis.behaviour import errors as error_analysis
from analysis.behaviour import mixture
from analysis.human import comparison as human
from analysis.neural import selectivity, snr

N_TRIALS = 400  # per set size


@pytest.fixture(scope="module")
def trained_errors(trained_run):
    return error_analysis.run(trained_run.model, trained_run.env, n_trials=N_TRIALS, seed=3)


def _mae_and_se(result, n):
    errors = result.data.errors[result.data.set_size == n]
    absolute = np.abs(errors)
    return absolute.mean(), absolute.std(ddof=1) / math.sqrt(absolute.size)


def test_untrained_model_is_at_chance(untrained_run):
    _, model, env = untrained_run
    result = error_analysis.run(model, env, n_trials=N_TRIALS, seed=4)
    absolute = np.abs(result.data.errors)
    # |error| of a response unrelated to the target is uniform on [0, pi]: mean pi/2, SD pi/sqrt(12)
    se = (math.pi / math.sqrt(12)) / math.sqrt(absolute.size)
    assert abs(absolute.mean() - math.pi / 2) < 4 * se


def test_trained_model_beats_chance_and_error_rises_with_set_size(trained_errors):
    maes = {n: _mae_and_se(trained_errors, n) for n in (1, 2, 3)}
    assert maes[1][0] < 0.5  # far from chance (pi/2)
    for small, large in ((1, 2), (2, 3)):
        (m_small, se_small), (m_large, se_large) = maes[small], maes[large]
        assert m_large - m_small > 3 * math.hypot(se_small, se_large)
    variance = trained_errors.statistics.column("circular_variance")
    assert np.all(np.diff(variance) > 0)


def test_trained_model_mixture_precision_falls_with_set_size(trained_run):
    result = mixture.run(trained_run.model, trained_run.env, n_trials=N_TRIALS, seed=5)
    sd = [result.fits[n].vm_uniform.sd for n in (1, 2, 3)]
    assert sd[0] < sd[2]
    for n in (1, 2, 3):
        swap = result.fits[n].swap
        assert swap.p_target + swap.p_nontarget + swap.p_guess == pytest.approx(1.0, abs=1e-6)


def test_trained_model_snr_falls_with_set_size(trained_run):
    # One SNR analysis uses one random stimulus per set size, so its dB values scatter by a few
    # dB (SD ~4 dB per stimulus); the drop from set size 1 to 3 (~3.5 dB) is compared with its
    # standard error over 16 stimuli (8 gave t ~2.4: too few for a 3-SE test).
    drops = []
    for seed in range(16):
        result = snr.run(trained_run.model, trained_run.env, n_trials=200, seed=seed)
        drops.append(result.stats[1].snr2_db - result.stats[3].snr2_db)
    drops = np.asarray(drops)
    assert drops.mean() > 3 * drops.std(ddof=1) / math.sqrt(drops.size)


def test_trained_model_selectivity_is_bounded(trained_run):
    result = selectivity.run(trained_run.model, trained_run.env, n_trials=300, seed=7)
    ipr = np.asarray(result.ipr, dtype=float)
    k = trained_run.env.unwrapped.max_items
    finite = ipr[np.isfinite(ipr)]
    assert finite.size > 0
    assert np.all(finite >= 1.0 / k - 1e-9) and np.all(finite <= 1.0 + 1e-9)


def test_human_comparison_ratios(trained_errors):
    summary = human.load_human_summary()
    model = human.model_summary(trained_errors.statistics)
    comparison = human.human_comparison(model, summary)
    ratios = comparison.to_dict()
    text = json.dumps(ratios)
    assert "NaN" not in text
    # the model is far more precise than people at set size 1 (as the reference's model was)
    mae_ratio = comparison.ratio["mae"][comparison.set_sizes.index(1)]
    assert 0 < mae_ratio < 1


def test_analysis_cli_on_trained_run(trained_run_dir, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run_dir, run_dir)
    code = analysis_main(
        [str(run_dir), "--trials", "60", "--only", "errors,mixture,snr,dn,selectivity"]
    )
    assert code == 0
    for name in ("errors", "mixture", "snr", "dn", "selectivity"):
        data = json.loads((run_dir / "analysis" / f"{name}.json").read_text())
        assert data
    assert list((run_dir / "analysis").glob("*.png"))
