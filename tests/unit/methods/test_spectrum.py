"""Spectrum-style selection: SNR on matrices with known spectra, ranking per module type, budget rules."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from cofitune.methods import spectrum
from cofitune.models import regions

NOISE_STD = 0.02


def gaussian(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * NOISE_STD


def low_rank(rows: int, cols: int, rank: int, strength: float, seed: int) -> torch.Tensor:
    """rank orthonormal directions, each with singular value `strength` times the noise's MP edge."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(rows, rank, generator=generator))[0]
    right = torch.linalg.qr(torch.randn(cols, rank, generator=generator))[0]
    edge = NOISE_STD * (math.sqrt(rows) + math.sqrt(cols))
    return strength * edge * left @ right.T


def plant(param: torch.Tensor, strength: float, seed: int = 123) -> None:
    with torch.no_grad():
        param += low_rank(*param.shape, rank=2, strength=strength, seed=seed)


def sizes_of(model) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters()}


# --- (a) SNR on known spectra -------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.25])
def test_mp_median_matches_a_simulated_gaussian_matrix(beta):
    rows = 800
    values = torch.linalg.svdvals(torch.randn(rows, int(beta * rows), generator=torch.Generator().manual_seed(1)))
    assert float(values.median()) / math.sqrt(rows) == pytest.approx(spectrum.mp_median(beta), rel=0.01)


@pytest.mark.parametrize("shape", [(256, 256), (128, 512), (512, 128), (64, 64), (32, 64)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_gaussian_noise_has_snr_near_zero(shape, seed):
    assert spectrum.snr(gaussian(*shape, seed)) < 0.05


def test_low_rank_signal_plus_small_noise_has_high_snr():
    weight = gaussian(256, 256, 0) + low_rank(256, 256, rank=4, strength=10.0, seed=1)
    assert spectrum.snr(weight) > 0.25
    assert spectrum.snr(weight) > 10 * spectrum.snr(gaussian(256, 256, 0))


def test_snr_grows_monotonically_with_signal_strength():
    noise = gaussian(256, 256, 0)
    scores = [spectrum.snr(noise + low_rank(256, 256, 4, s, seed=1)) for s in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)]
    assert scores == sorted(scores)
    assert all(a < b for a, b in itertools.pairwise(scores[2:]))  # strictly once detectable


def test_snr_ignores_scale_and_transposition():
    weight = gaussian(96, 160, 0) + low_rank(96, 160, 3, 5.0, seed=2)
    base = spectrum.snr(weight)
    assert spectrum.snr(7.0 * weight) == pytest.approx(base, rel=1e-4)
    assert spectrum.snr(weight.T) == pytest.approx(base, rel=1e-4)
    assert spectrum.snr(weight.to(torch.bfloat16)) == pytest.approx(base, rel=0.05)


def test_snr_edge_cases():
    assert spectrum.snr(torch.zeros(8, 8)) == 0.0
    assert spectrum.snr(torch.diag(torch.tensor([5.0, 0, 0, 0, 0]))) == math.inf  # exact low rank: no noise
    with pytest.raises(ValueError, match="2-D"):
        spectrum.snr(torch.ones(4))
    with pytest.raises(ValueError, match="unknown SNR method"):
        spectrum.snr(torch.eye(4), method="nope")


def test_snr_by_hand_on_a_diagonal_matrix():
    values = torch.tensor([10.0, 3.0, 2.0, 1.5, 1.0, 1.0, 0.5, 0.5])
    weight = torch.diag(values)
    edge = 1.25 * 2.0 / spectrum.mp_median(1.0)  # median 1.25, beta 1
    expected = float(values[values > edge].sum() / values[values <= edge].sum())
    assert spectrum.snr(weight) == pytest.approx(expected)
    # the reference code's formula: IQR/1.349 * (1 + sqrt(beta)) edge, ratio divided by the largest value
    q25, q75 = torch.quantile(values, torch.tensor([0.25, 0.75])).tolist()
    ref_edge = (q75 - q25) / 1.349 * 2.0
    ref = float(values[values > ref_edge].sum() / values[values <= ref_edge].sum()) / 10.0
    assert spectrum.snr(weight, method="reference") == pytest.approx(ref)


def test_reference_method_has_the_quirks_documented():
    noise = gaussian(256, 256, 0)
    assert spectrum.snr(2 * noise, "reference") == pytest.approx(spectrum.snr(noise, "reference") / 2, rel=1e-4)
    weak, strong = (spectrum.snr(noise + low_rank(256, 256, 4, s, 1), "reference") for s in (2.0, 16.0))
    assert strong < weak  # decreasing in signal strength
    assert spectrum.snr(gaussian(128, 512, 0), "reference") == math.inf


# --- (b) ranking on a tiny model ----------------------------------------------------------------------


def test_planted_signal_ranks_first_among_q_proj(tiny_llama):
    model, _ = tiny_llama
    planted = "model.layers.2.self_attn.q_proj.weight"
    plant(dict(model.named_parameters())[planted], strength=8.0)
    ranking = spectrum.rank_matrices(model)
    q_group = [r for r in ranking if r.group == "q"]
    assert q_group[0].name == planted
    assert q_group[0].snr > 0.1 > max(r.snr for r in q_group[1:])


def test_ranking_covers_every_role_matrix_grouped_by_role(tiny_llama):
    model, _ = tiny_llama
    ranking = spectrum.rank_matrices(model)
    params = dict(model.named_parameters())
    n_layers = len(regions.decoder_layers(model))
    groups = list(dict.fromkeys(r.group for r in ranking))
    assert groups == ["q", "k", "v", "o", "gate", "up", "down"]
    assert len(ranking) == 7 * n_layers
    for r in ranking:
        assert r.name in params and params[r.name].ndim == 2
        _, roles, _ = regions.locate_parameter(model, r.name)
        assert roles == (r.group,)
    for group in groups:
        scores = [r.snr for r in ranking if r.group == group]
        assert len(scores) == n_layers and scores == sorted(scores, reverse=True)


def test_ranking_honours_roles_and_layer_range(tiny_llama):
    model, _ = tiny_llama
    ranking = spectrum.rank_matrices(model, roles=("up", "down"), layer_range=(0.5, 1.0))
    assert {r.group for r in ranking} == {"up", "down"}
    assert {regions.locate_parameter(model, r.name)[0] for r in ranking} == {2, 3}
    with pytest.raises(ValueError, match="no"):
        spectrum.rank_matrices(model, roles=("qkv",))


# --- (c) selection ------------------------------------------------------------------------------------


def test_budget_is_never_exceeded_and_selection_is_deterministic(tiny_llama):
    model, _ = tiny_llama
    ranking = spectrum.rank_matrices(model)
    sizes = sizes_of(model)
    total = sum(sizes[r.name] for r in ranking)
    for budget in (4096, 10_000, 30_000, total // 2, total - 1):
        chosen = spectrum.select_by_budget(ranking, sizes, budget)
        assert sum(sizes[n] for n in chosen) <= budget
        assert chosen == spectrum.select_by_budget(ranking, sizes, budget)
        assert len(set(chosen)) == len(chosen)
    assert sorted(spectrum.select_by_budget(ranking, sizes, total)) == sorted(r.name for r in ranking)


def test_budget_round_robin_takes_each_groups_best_first(tiny_llama):
    model, _ = tiny_llama
    plant(dict(model.named_parameters())["model.layers.3.mlp.down_proj.weight"], strength=8.0)
    ranking = spectrum.rank_matrices(model)
    sizes = sizes_of(model)
    best = {g: members[0].name for g, members in spectrum.by_group(ranking).items()}
    one_each = sum(sizes[n] for n in best.values())
    chosen = spectrum.select_by_budget(ranking, sizes, one_each)
    assert chosen == list(best.values())
    assert "model.layers.3.mlp.down_proj.weight" in chosen


def test_budget_closes_a_group_whose_next_matrix_does_not_fit():
    ranking = [
        spectrum.RankedMatrix("big.0", "big", 0.9),
        spectrum.RankedMatrix("big.1", "big", 0.5),
        spectrum.RankedMatrix("small.0", "small", 0.2),
        spectrum.RankedMatrix("small.1", "small", 0.1),
        spectrum.RankedMatrix("small.2", "small", 0.3),
    ]
    sizes = {"big.0": 100, "big.1": 100, "small.0": 10, "small.1": 10, "small.2": 10}
    assert spectrum.select_by_budget(ranking, sizes, 130) == ["big.0", "small.2", "small.0", "small.1"]
    assert spectrum.select_by_budget(ranking, sizes, 25) == ["small.2", "small.0"]


def test_budget_smaller_than_every_matrix_raises(tiny_llama):
    model, _ = tiny_llama
    ranking = spectrum.rank_matrices(model)
    sizes = sizes_of(model)
    smallest = min(sizes[r.name] for r in ranking)
    with pytest.raises(ValueError, match="smallest candidate"):
        spectrum.select_by_budget(ranking, sizes, smallest - 1)
    with pytest.raises(ValueError, match=">= 0"):
        spectrum.select_by_budget(ranking, sizes, -1)
    with pytest.raises(KeyError):
        spectrum.select_by_budget(ranking, {}, 10**9)


def test_fraction_takes_the_top_of_every_group(tiny_llama):
    model, _ = tiny_llama
    ranking = spectrum.rank_matrices(model)
    groups = spectrum.by_group(ranking)
    half = spectrum.select_by_fraction(ranking, 0.5)
    assert half == [m.name for members in groups.values() for m in members[:2]]
    assert len(spectrum.select_by_fraction(ranking, 0.25)) == len(groups)
    assert spectrum.select_by_fraction(ranking, 0.2) == []  # floor(0.2 * 4) = 0, as in the reference code
    with pytest.raises(ValueError, match="fraction"):
        spectrum.select_by_fraction(ranking, 0.0)


def test_selection_returns_trainable_names_and_a_record(tiny_llama):
    model, _ = tiny_llama
    selected, record = spectrum.spectrum_selection(model, budget_params=20_000)
    regions.freeze_all_but(model, selected)  # the names exist in named_parameters()
    assert regions.count_parameters(model, selected) <= 20_000
    assert len(record) == 28
    assert {row["name"] for row in record if row["selected"]} == set(selected)
    assert set(record[0]) == {"name", "group", "snr", "rank_in_group", "selected", "numel"}
    assert [row["rank_in_group"] for row in record if row["group"] == "q"] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="exactly one"):
        spectrum.spectrum_selection(model)


# --- (d) fused q/k/v and Conv1D -----------------------------------------------------------------------


def test_gpt2_fused_qkv_is_one_matrix_of_type_qkv(tiny_gpt2):
    model, _ = tiny_gpt2
    planted = "transformer.h.1.attn.c_attn.weight"
    plant(dict(model.named_parameters())[planted], strength=8.0)
    ranking = spectrum.rank_matrices(model)
    assert list(dict.fromkeys(r.group for r in ranking)) == ["qkv", "o", "up", "down"]
    assert len(ranking) == 4 * len(regions.decoder_layers(model))
    assert next(r for r in ranking if r.group == "qkv").name == planted
    assert all(r.name.endswith(".weight") for r in ranking)  # Conv1D biases are not matrices
    # asking for q alone still yields the whole fused matrix
    assert {r.group for r in spectrum.rank_matrices(model, roles=("q",))} == {"qkv"}
    selected, _ = spectrum.spectrum_selection(model, budget_params=50_000)
    assert planted in selected
    assert regions.count_parameters(model, selected) <= 50_000


def test_spectrum_matched_to_the_final_model_is_refused_without_a_search():
    from cofitune.configuration.checks import semantic_errors

    config = {"baselines": {"full_sft": False, "v_softmask": False, "spectrum": {"enabled": True, "match_final": True}},
              "search": {"mode": "off"}}
    assert [e for e in semantic_errors(config) if e.startswith("baselines.spectrum.match_final / budget: final (spectrum_final): search.mode is off")]
    assert not [e for e in semantic_errors({**config, "search": {"mode": "greedy"}}) if "search.mode is off" in e]
