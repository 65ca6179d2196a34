"""The trade-off picture: the Pareto staircase and a plot of models with identical scores."""

from __future__ import annotations

from cofitune.evidence.plots import _staircase, shared_labels, tradeoff_scatter


def test_the_pareto_staircase_bounds_what_the_front_dominates():
    xs, ys = _staircase([(60.0, 30.0), (70.0, 20.0)], x_min=40.0, y_min=0.0)
    assert list(zip(xs, ys, strict=True)) == [(40, 30), (60, 30), (60, 20), (70, 20), (70, 0)]
    assert _staircase([(70.0, 27.0)], 40.0, 0.0) == ([40.0, 70.0, 70.0], [27.0, 27.0, 0.0])


def test_models_with_identical_scores_share_a_label(tmp_path):
    def row(candidate, label, ver, spe, pareto):
        return {"candidate": candidate, "label": label, "method": "region", "ver": ver, "spe": spe, "pareto": pareto,
                "ver_lo": ver - 5, "ver_hi": ver + 5, "spe_lo": spe - 5, "spe_hi": spe + 5}

    rows = [row("0.5-0.75_mha+ffn", "region", 70.1, 27.1, True), row("cofitune", "CoFiTune", 70.1, 27.1, True),
            row("base", "Base", 65.3, 0.0, False)]
    assert shared_labels(rows) == {(70.1, 27.1): "CoFiTune = 0.5-0.75_mha+ffn", (65.3, 0.0): "Base"}
    out = tmp_path / "tradeoff.png"
    tradeoff_scatter(rows, out, "chat")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_tree_draws_every_contender_and_the_final_model(tmp_path):
    from cofitune.evidence.plots import search_tree

    def node(level, name, chosen, uni):
        layers, modules = name.split("_")
        return {"level": level, "node": name, "layer_range": layers, "module_set": modules, "spe": uni / 2,
                "ver": uni / 2, "uni": uni, "chosen": chosen}

    trace = [node(1, "0-0.5_mha+ffn", False, 70.0), node(1, "0.5-1_mha+ffn", True, 80.0),
             node(2, "0.5-0.75_mha+ffn", True, 90.0), node(2, "0.75-1_mha+ffn", False, 85.5)]
    final = {"layer_range": "0.5-0.75", "module_set": "mha+ffn", "softmask": True, "spe": 46.0, "ver": 46.0, "uni": 92.0}
    search_tree(trace, final, tmp_path / "tree.svg")
    svg = (tmp_path / "tree.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("level 1", "level 2", "0-0.5 mha+ffn", "0.75-1 mha+ffn", "Uni. 85.5", "CoFiTune: 0.5-0.75 mha+ffn + soft-mask"):
        assert text in svg, text
