"""The scenario language: every preset parses, and every mistake is reported with a message naming it."""

from __future__ import annotations

import json

import pytest

from mockserver.scenarios import PRESETS, Scenario, ScenarioError, parse_scenario, parse_scenario_list


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_parses_by_name_and_as_json(name: str) -> None:
    by_name = parse_scenario(name)
    assert by_name == PRESETS[name]
    by_json = parse_scenario(json.dumps({"preset": name}))
    assert by_json.name == name
    assert by_json.model_dump(exclude={"name"}) == PRESETS[name].model_dump(exclude={"name"})


def test_preset_parameters_override_the_preset() -> None:
    s = parse_scenario('{"preset": "rate_limit", "retry_after": 0.25, "times": 3}')
    assert (s.name, s.error, s.retry_after, s.times) == ("rate_limit", "rate_limit", 0.25, 3)


def test_full_spec_without_preset() -> None:
    s = parse_scenario({"text": "hello", "chunks": 2, "usage": "null"})
    assert s == Scenario(text="hello", chunks=2, usage="null")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("no_such_preset", "no_such_preset"),
        ('{"preset": "nope"}', "nope"),
        ('{"chunks": 0}', "chunks"),
        ('{"bogus_field": 1}', "bogus_field"),
        ('{"usage": "sometimes"}', "usage"),
        ('{"error": "teapot"}', "error"),
        ('{"abort_after": 1, "error_after": 2}', "at most one"),
        ('{"error": "rate_limit", "hang": true}', "cannot be combined"),
        ('{"preset": 3}', "'preset' must be a string"),
        ("[1, 2]", "unknown scenario preset '[1, 2]'"),
        ("   ", "empty scenario"),
    ],
)
def test_bad_scenarios_name_the_problem(raw: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    assert needle in str(info.value)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"known presets: .*rate_limit"):
        parse_scenario("rate_limitt")


def test_list_forms_and_indexed_errors() -> None:
    assert [s.name for s in parse_scenario_list(["ok", {"preset": "timeout"}])] == ["ok", "timeout"]
    assert [s.name for s in parse_scenario_list({"scenarios": ["rate_limit"]})] == ["rate_limit"]
    assert len(parse_scenario_list("ok")) == 1
    with pytest.raises(ScenarioError, match=r"scenarios\[1\]: .*chunks"):
        parse_scenario_list(["ok", {"chunks": -1}])
    with pytest.raises(ScenarioError, match="non-empty list"):
        parse_scenario_list([])
