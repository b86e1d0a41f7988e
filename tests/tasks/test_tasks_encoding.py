"""Invariants of the angle <-> channel encodings used by the tasks."""

import numpy as np
import pytest
import torch

from vwm_tasks.encoding import (
    angles_to_targets,
    channels_per_item,
    decode_input_angles,
    encode_angles,
    targets_to_angles,
    wrap_angle,
)

K, STRENGTH = 10, 120.0


@pytest.fixture
def angles():
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, (500, K))
    presence = rng.random((500, K)) < 0.5
    return theta, presence


def test_positive_channels_sum_range_and_absent(angles):
    theta, presence = angles
    scale = STRENGTH / K
    channels = encode_angles(
        theta, presence, encoding="positive", strength=STRENGTH, max_items=K
    ).reshape(500, K, 3)
    assert channels_per_item("positive") == 3
    np.testing.assert_allclose(channels.sum(-1)[presence], 3 * scale, rtol=1e-12)
    present = channels[presence]
    lo, hi = 1 - np.sqrt(2 / 3), 1 + np.sqrt(2 / 3)  # 0.184, 1.816
    assert present.min() >= lo * scale - 1e-9 and present.max() <= hi * scale + 1e-9
    assert np.isclose(lo, 0.184, atol=5e-4) and np.isclose(hi, 1.816, atol=5e-4)
    assert not channels[~presence].any()


@pytest.mark.parametrize("encoding", ["positive", "cossin"])
def test_decode_input_angles_inverts(angles, encoding):
    theta, presence = angles
    channels = encode_angles(theta, np.ones_like(presence), encoding=encoding, strength=STRENGTH)
    assert channels.shape == (500, K * channels_per_item(encoding))
    np.testing.assert_allclose(
        wrap_angle(decode_input_angles(channels, encoding) - theta), 0, atol=1e-12
    )
    as_torch = encode_angles(
        torch.as_tensor(theta), torch.ones(500, K), encoding=encoding, strength=STRENGTH
    )
    np.testing.assert_allclose(as_torch.numpy(), channels, rtol=1e-12)


def test_targets_interleave_and_invert(angles):
    theta, presence = angles
    targets = angles_to_targets(theta, presence)
    np.testing.assert_allclose(targets[:, 0::2], np.cos(theta) * presence)
    np.testing.assert_allclose(targets[:, 1::2], np.sin(theta) * presence)
    recovered = targets_to_angles(angles_to_targets(theta, np.ones_like(presence)))
    np.testing.assert_allclose(wrap_angle(recovered - theta), 0, atol=1e-12)


def test_wrap_angle_range():
    x = np.linspace(-20, 20, 10001)
    wrapped = wrap_angle(x)
    assert wrapped.min() >= -np.pi and wrapped.max() < np.pi
    np.testing.assert_allclose(np.exp(1j * wrapped), np.exp(1j * x), atol=1e-12)


def test_unknown_encoding_names_the_argument():
    with pytest.raises(ValueError, match="input_encoding"):
        channels_per_item("polar")
