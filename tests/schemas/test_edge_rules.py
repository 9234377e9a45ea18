"""The local flood rule's contract: its digest is checked against its content, and a
version is installed only over an older one (schemas/edge_rules.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.edge_rules import EdgeFloodRule, content_digest

BODY = {"sensor": "fs-1", "lamp_on_cm": 20, "siren_on_cm": 30, "off_below_cm": 8}


def test_the_digest_is_the_content_whatever_the_number_type_or_version() -> None:
    one = EdgeFloodRule.derive(1, **BODY)
    floats = EdgeFloodRule.derive(7, **{**BODY, "lamp_on_cm": 20.0})
    assert one.digest == floats.digest == content_digest(BODY)
    assert EdgeFloodRule.derive(1, **{**BODY, "lamp_on_cm": 21}).digest != one.digest
    assert EdgeFloodRule.model_validate(one.params()) == one  # round trip as params


def test_a_digest_that_does_not_match_the_rule_is_refused_naming_both() -> None:
    params = {**EdgeFloodRule.derive(1, **BODY).params(), "lamp_on_cm": 25}
    with pytest.raises(ValidationError, match=r"digest '[0-9a-f]{16}' does not match the rule"):
        EdgeFloodRule.model_validate(params)
    with pytest.raises(ValidationError, match="digest"):
        EdgeFloodRule.model_validate({**params, "digest": "not-hex"})


def test_only_a_newer_version_or_the_same_rule_again_supersedes() -> None:
    installed = EdgeFloodRule.derive(5, **BODY)
    changed = {**BODY, "siren_on_cm": 40}
    assert EdgeFloodRule.derive(6, **changed).refusal(installed) is None
    assert EdgeFloodRule.derive(5, **BODY).refusal(installed) is None  # a re-delivery
    assert EdgeFloodRule.derive(1, **BODY).refusal(None) is None
    older = EdgeFloodRule.derive(4, **changed).refusal(installed)
    assert older == "version 4 is older than the installed version 5"
    clash = EdgeFloodRule.derive(5, **changed).refusal(installed)
    assert clash is not None and "needs a higher version" in clash
    assert installed.readback() == {"rules_version": 5, "rules_digest": installed.digest}
