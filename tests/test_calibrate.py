"""Calibration recovers known achieved-performance terms from times they generate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import rooflax
from rooflax.validate.calibrate import fit_terms, predict_times

PROFILE = rooflax.Hardware(name="dev", peak_flops={"fp32": 1e12}, bandwidth_bytes_per_s=1e10, memory_bytes=1e9)


def _frame(truth: dict[str, tuple[float, float, float]], points: int = 12, seed: int = 0) -> pl.DataFrame:
    """Ops of every group from tiny to large, timed by the model itself with ``truth``'s terms."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, (overhead, ce, be) in truth.items():
        for _ in range(points):
            flops = float(10 ** rng.uniform(5, 11))
            bytes_ = float(flops / 10 ** rng.uniform(-1, 3))  # intensities either side of the ridge (100)
            spent = flops * rng.uniform(1, 1.5)
            t = overhead + max(spent / (1e12 * ce), bytes_ / (1e10 * be))
            rows.append({"group": group, "flops": flops, "bytes": bytes_, "spent_flops": spent, "measured_time_s": t})
    return pl.DataFrame(rows)


TRUTH = {"qkv mlp": (4e-6, 0.7, 0.9), "up/gate/down": (6e-6, 0.8, 0.6), "qk/pv": (1e-5, 0.3, 0.5)}


def test_fit_recovers_the_terms_that_made_the_times():
    fitted = fit_terms(_frame(TRUTH), PROFILE, "fp32")
    for group, (overhead, ce, be) in TRUTH.items():
        got = fitted.terms(group)
        assert got["kernel_overhead_s"] == pytest.approx(overhead, rel=1e-6)
        assert got["compute_efficiency"] == pytest.approx(ce, rel=1e-6)
        assert got["bandwidth_efficiency"] == pytest.approx(be, rel=1e-6)
    assert fitted.peak("fp32") == PROFILE.peak("fp32")  # every efficiency ≤ 1: ceilings kept


def test_a_device_faster_than_its_measured_ceiling_raises_the_ceiling():
    truth = {"qkv mlp": (4e-6, 0.7, 1.6)}  # reads at 1.6× the measured copy bandwidth
    frame = _frame(truth)
    fitted = fit_terms(frame, PROFILE, "fp32")
    assert fitted.bandwidth_bytes_per_s == pytest.approx(1.6e10, rel=1e-6)
    assert fitted.terms("qkv mlp")["bandwidth_efficiency"] == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(predict_times(frame, fitted, "fp32"), frame["measured_time_s"].to_numpy(), rtol=1e-6)


def test_fit_on_half_predicts_the_other_half_with_noise():
    frame = _frame(TRUTH, points=40, seed=1)
    noisy = frame.with_columns(pl.col("measured_time_s") * np.random.default_rng(2).lognormal(0, 0.1, len(frame)))
    train, test = noisy[::2], noisy[1::2]
    fitted = fit_terms(train, PROFILE, "fp32")
    before = np.abs(predict_times(test, PROFILE, "fp32") / test["measured_time_s"].to_numpy() - 1)
    after = np.abs(predict_times(test, fitted, "fp32") / test["measured_time_s"].to_numpy() - 1)
    assert np.median(after) < 0.15 < np.median(before)


def test_small_groups_share_the_overall_fit():
    frame = _frame({"qkv mlp": (4e-6, 0.7, 0.9)}, points=12).vstack(_frame({"qk/pv": (4e-6, 0.7, 0.9)}, points=3))
    fitted = fit_terms(frame, PROFILE, "fp32")
    assert [group for group, _ in fitted.group_terms] == ["qkv mlp"]
    assert fitted.terms("qk/pv")["compute_efficiency"] == pytest.approx(0.7, rel=1e-6)
