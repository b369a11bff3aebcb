"""The published contract: every sample in events/ is valid, and the schema the template registers
is the one in events/."""

from __future__ import annotations

import jsonschema
import pytest
from samtranslator.yaml_helper import yaml_parse

from iics_monitor.validation import MonitorSettings, parse_request
from iics_monitor_local import schema
from tests.conftest import EVENTS, OUTCOME_SCHEMA, ROOT, assert_valid_outcome, load_event

OUTCOME_SAMPLES = sorted(p.name for p in EVENTS.glob("outcome-*.json"))
DEFAULTS = MonitorSettings(initial_wait_seconds=15, max_wait_seconds=300, timeout_seconds=21600)


def test_there_is_a_sample_for_every_outcome():
    states = {load_event(name)["detail"]["state"] for name in OUTCOME_SAMPLES}
    assert states == set(OUTCOME_SCHEMA["properties"]["state"]["enum"])


@pytest.mark.parametrize("name", OUTCOME_SAMPLES)
def test_outcome_samples_are_valid_events(name):
    event = load_event(name)
    assert (event["source"], event["detail-type"]) == (schema.SOURCE, schema.DETAIL_TYPE)
    assert_valid_outcome(event["detail"])
    jsonschema.validate(event, schema.envelope_schema())


def test_the_schema_rejects_what_it_should():
    good = load_event("outcome-failed.json")["detail"]
    for broken in (
        {**good, "state": "PARTIAL"},
        {**good, "log": None},  # a missing log must say why
        {**good, "jobId": None},  # only an ERROR may lack a job id
        {**good, "failedObjects": good["failedObjects"] * 13},  # more than 25
        {k: v for k, v in good.items() if k != "polls"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            assert_valid_outcome(broken)
    error = load_event("outcome-error.json")["detail"]
    with pytest.raises(jsonschema.ValidationError):
        assert_valid_outcome({**error, "errorType": None})


def test_the_schema_is_draft_4_as_the_registry_requires():
    jsonschema.Draft4Validator.check_schema(OUTCOME_SCHEMA)
    jsonschema.Draft4Validator.check_schema(schema.envelope_schema())


def test_the_registered_schema_is_generated_from_events():
    assert schema.check(), "template.yaml's OutcomeEventSchema differs from events/: run `make schema`"
    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    assert resources["OutcomeEventSchema"]["Properties"]["Type"] == "JSONSchemaDraft4"


@pytest.mark.parametrize("name", ["trigger.json", "bare-input.json"])
def test_trigger_samples_parse(name):
    event = load_event(name)
    request = parse_request(event.get("detail", event), DEFAULTS)
    assert request.job_id == "7evG9CokA1whk8ehF3opKM"
