"""Config sections parsed once into frozen objects: what crosses a rule is their JSON, read back equal."""

from __future__ import annotations

import dataclasses

import pytest

from cofitune.coarse.settings import SearchSection
from cofitune.fine.masking import SoftmaskSection


def test_the_search_section_keeps_only_what_a_decision_reads():
    config = {"seed": 9, "search": {"mode": "grid", "tie_band": 1.5, "fine_controls": ["shuffled"], "keep_parent": False}}
    section = SearchSection.from_config(config)
    assert section == SearchSection(mode="grid", tie_band=1.5, seed=9)
    assert section.settings() == {"mode": "grid", "tie_band": 1.5, "seed": 9}  # the fine level's controls are not in it
    assert SearchSection.from_settings(section.settings()) == section
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.mode = "off"  # type: ignore[misc]


def test_the_softmask_section_round_trips_and_refuses_an_unknown_mode():
    section = SoftmaskSection.from_config({"parts": ["attention", "output_projection"], "apply": "gradient"})
    assert section == SoftmaskSection(("attention", "output_projection"), "gradient")
    assert SoftmaskSection.from_config(section.settings()) == section
    assert SoftmaskSection.from_config({}) == SoftmaskSection("auto", "update")
    with pytest.raises(ValueError, match=r"softmask.apply: 'weights' is not one of \('update', 'gradient'\)"):
        SoftmaskSection.from_config({"apply": "weights"})
