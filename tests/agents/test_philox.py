"""The noise's CPU random numbers (vwm_agents.models.philox): Philox-4x32-10 keyed from a torch.Generator.

The eager generator must reproduce the published Random123 test vectors; the C kernels must give
the same bits (uniforms bit-identical, normals to float32 rounding of the same formula); the
numbers must have their distributions (moments within Z standard errors) and come from the
generator (same state, same numbers; one draw advances it by one number).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from vwm_agents.models import native, philox
from vwm_agents.models.noise import noise_fn

Z = 4.5


def _counter(*words: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.tensor([w], dtype=torch.int64) for w in words)


@pytest.mark.parametrize(
    "counter, key, expected",
    [  # Random123's known-answer vectors for philox4x32_10 (kat_vectors)
        ((0, 0, 0, 0), 0, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, 0xFFFFFFFF_FFFFFFFF, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0x299F31D0 << 32) | 0xA4093822,
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_matches_the_published_test_vectors(counter, key, expected):
    words = philox.philox4x32(_counter(*counter), key)
    assert [int(w) for w in words[0]] == list(expected)


needs_kernels = pytest.mark.skipif(
    native.kernels() is None, reason="no C compiler: the kernels cannot be built here"
)


@needs_kernels
@pytest.mark.parametrize("n", [1, 3, 4, 5, 17, 1000, 16384, 100_003])
def test_kernels_draw_the_eager_numbers(n):
    kernels = native.kernels()
    key = 0x5DEECE66D_1234567
    fused_uniform, fused_normal = torch.empty(n), torch.empty(n)
    kernels.philox_uniform(key, fused_uniform)
    kernels.philox_normal(key, fused_normal)
    assert torch.equal(fused_uniform, philox._eager_uniform(n, key, torch.float32))
    eager_normal = philox._eager_normal(n, key, torch.float64)
    # |z| <= 5.8: a few float32 ulps of the largest values
    assert (fused_normal.double() - eager_normal).abs().max() <= 2e-6
    like = torch.empty(n)
    for draw in (philox.uniform, philox.normal):
        with_kernels = draw(like, torch.Generator().manual_seed(n))
        without = draw(like, torch.Generator().manual_seed(n), native_kernels=False)
        torch.testing.assert_close(with_kernels, without, rtol=0, atol=2e-6)


def test_layout_of_a_draw():
    """Element j + m q is word m of block j (q = ceil(n / 4))."""
    n, key = 10, 77
    q = 3
    words = philox.philox_words(q, key)
    uniforms = philox._eager_uniform(n, key, torch.float64)
    for j in range(q):
        for m in range(4):
            if j + m * q < n:
                assert uniforms[j + m * q] == (int(words[j, m]) >> 8) * 2.0**-24
    normals = philox._eager_normal(n, key, torch.float64)
    u1 = ((int(words[0, 0]) >> 8) + 1) * 2.0**-24
    u2 = (int(words[0, 1]) >> 8) * 2.0**-24
    radius = math.sqrt(-2 * math.log(u1))
    assert normals[0] == pytest.approx(radius * math.cos(2 * math.pi * u2), abs=1e-12)
    assert normals[q] == pytest.approx(radius * math.sin(2 * math.pi * u2), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normals_and_uniforms_have_their_distributions(dtype):
    n = 400_000
    like = torch.empty(n, dtype=dtype)
    generator = torch.Generator().manual_seed(11)
    z = philox.normal(like, generator).double()
    # mean, variance, fourth moment of N(0, 1): SEs sqrt(1/n), sqrt(2/n), sqrt(96/n)
    assert abs(z.mean()) <= Z * math.sqrt(1 / n)
    assert abs(z.var() - 1) <= Z * math.sqrt(2 / n)
    assert abs((z**4).mean() - 3) <= Z * math.sqrt(96 / n)
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-4
    u = philox.uniform(like, generator).double()
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) <= Z * math.sqrt(1 / 12 / n)
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-4
    # neighbouring elements (one block, and adjacent blocks) are uncorrelated
    for first, second in ((z[:-1], z[1:]), (z[: n // 4], z[n // 4 : n // 2])):
        assert abs(torch.corrcoef(torch.stack((first, second)))[0, 1]) <= Z / math.sqrt(n // 4)


def test_draws_come_from_the_generator_one_number_each():
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    like = torch.empty(64, 32)
    first = philox.normal(like, generator)
    after_one = torch.empty(1, dtype=torch.int64).random_(generator=generator)
    generator.set_state(state)
    assert torch.equal(philox.normal(like, generator), first)
    torch.empty(1, dtype=torch.int64).random_(generator=torch.Generator())  # another generator
    assert torch.equal(torch.empty(1, dtype=torch.int64).random_(generator=generator), after_one)
    assert not torch.equal(philox.normal(like, generator), first)


def test_stacked_members_draw_what_they_draw_alone():
    rates = torch.full((3, 5, 7), 10.0)
    members = [torch.Generator().manual_seed(s) for s in range(3)]
    stacked = noise_fn("gauss", 0.1, 10.0, members)(rates)
    for s in range(3):
        alone = noise_fn("gauss", 0.1, 10.0, torch.Generator().manual_seed(s))(rates[s])
        assert torch.equal(stacked[s], alone)
