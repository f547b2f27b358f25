"""Generated and hand-written install docs: the policy reference is generated from the models
and not stale and documents every field (links: test_doc_links.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))
import gen_policy_reference  # noqa: E402


def test_policy_reference_is_not_stale() -> None:
    committed = (REPO / "docs" / "policy-reference.md").read_text()
    assert committed == gen_policy_reference.render(), (
        "docs/policy-reference.md is stale: run `make policy-reference`"
    )


def test_policy_reference_lists_every_field_of_every_model() -> None:
    text = gen_policy_reference.render()
    models, _ = gen_policy_reference.walk_models()
    for model in models:
        section = text.split(f"## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for name in model.model_fields:
            assert f"| `{name}` |" in section, f"{model.__name__}.{name} missing"
    assert "## CreateConstraints" in text and "## LabelSelectorRequirement" in text


def test_a_field_without_description_or_example_fails_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = dict(gen_policy_reference.NOTES)
    del notes[("DockerSocketPolicySpec", "port")]  # no description in the model either
    monkeypatch.setattr(gen_policy_reference, "NOTES", notes)
    with pytest.raises(gen_policy_reference.Undocumented, match=r"DockerSocketPolicySpec\.port"):
        gen_policy_reference.render()


def test_notes_only_name_fields_that_exist() -> None:
    models, _ = gen_policy_reference.walk_models()
    fields = {(m.__name__, f) for m in models for f in m.model_fields}
    assert set(gen_policy_reference.NOTES) <= fields


def test_defaults_are_shown_as_yaml() -> None:
    class M(BaseModel):
        flag: bool = True

    info = M.model_fields["flag"]
    assert gen_policy_reference.default_text(info) == "`true`"
