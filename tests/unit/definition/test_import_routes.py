"""The state machine's routes for imports and further orgs: every import outcome goes out as IICS Import
Job State Change with the fields the schema has, and an export of the stack's own org never meets the new
states (its paths, requests and events are the ones it always had)."""

from __future__ import annotations

import json

from iics_monitor.outcome import IMPORT_DETAIL_TYPE, build_outcome
from tests.conftest import ROOT

ASL = json.loads((ROOT / "statemachine" / "export_monitor.asl.json").read_text())
STATES = ASL["States"]
SCHEMA = json.loads((ROOT / "events" / "outcome.schema.json").read_text())
JOB_STATES = {
    "ReportJobRefusal",
    "RememberJob",
    "ReportJobStartError",
    "ReportJobCheckError",
    "ImportPollBudgetUsedUp",
    "ExplainImportPollBudget",
    "ArchiveImportLog",
    "BuildJobErrorOutcome",
    "WhichDetailType",
    "EmitImportOutcome",
    "KeepUndeliveredImportOutcome",
}


def nexts(state: dict) -> set[str]:
    found = {state["Next"]} if "Next" in state else set()
    found |= {c["Next"] for c in state.get("Choices", [])} | ({state["Default"]} if "Default" in state else set())
    return found | {c["Next"] for c in state.get("Catch", [])}


def test_every_import_outcome_goes_out_with_the_import_detail_type_and_the_same_detail():
    (entry,) = STATES["EmitImportOutcome"]["Parameters"]["Entries"]
    assert entry["DetailType"] == IMPORT_DETAIL_TYPE and entry["Detail.$"] == "$.outcome.detail"
    keep = STATES["KeepUndeliveredImportOutcome"]["Parameters"]["MessageBody"]
    assert keep == {k: v for k, v in entry.items() if k != "EventBusName"}
    assert STATES["ArchiveImportLog"]["Next"] == "EmitImportOutcome"
    assert STATES["ArchiveImportLog"]["Parameters"] == STATES["ArchiveLog"]["Parameters"]  # the same function


def test_the_job_error_outcome_has_every_field_of_an_import_outcome():
    built = STATES["BuildJobErrorOutcome"]["Parameters"]["detail"]
    other = build_outcome(
        job_id="J1",
        state="FAILED",
        poll={},
        status=None,
        log=None,
        log_error="x",
        reason=None,
        execution_arn=None,
        kind="import",
        org="prod",
    )
    assert {key.removesuffix(".$") for key in built} == set(other)
    assert set(SCHEMA["required"]) <= set(other) <= set(SCHEMA["properties"])
    assert built["schemaMinorVersion"] == other["schemaMinorVersion"] == 3


def test_an_export_of_the_stacks_own_org_cannot_reach_the_job_states():
    """Without kind in the request, poll record or refusal, no route leads into a job state: every rule
    that does names $.request.kind, $.check.poll.kind or $.refused.kind."""
    for name, state in STATES.items():
        for rule in state.get("Choices", []):
            if rule["Next"] in JOB_STATES:
                assert "kind" in json.dumps(rule), (name, rule)
        if name not in JOB_STATES and "Next" in state:
            assert state["Next"] not in JOB_STATES or name in {"ReadErrorCause", "DescribeUnexpectedError"}, name
    assert JOB_STATES <= set(STATES)


def test_the_poll_record_says_what_job_it_is_from_the_start():
    remember = STATES["RememberJob"]
    assert remember["Parameters"]["poll"]["kind.$"] == "$.request.kind"
    assert remember["Parameters"]["poll"]["org.$"] == "$.request.org"
    static = {k for k in STATES["StartPolling"]["Result"]["poll"]}
    assert static <= set(remember["Parameters"]["poll"])  # the same record, plus kind and org
    assert remember["ResultPath"] == "$.check" and remember["Next"] == "IsExportRequest"
