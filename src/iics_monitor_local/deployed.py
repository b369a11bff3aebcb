"""A deployed iics-export-monitor stack, reached with boto3: its outputs and Parameters as
CloudFormation reports them, and the trigger event its rule matches.

``submit``, ``redeliver`` and ``watch --aws real`` read the stack with ``read_stack``; ``submit`` and
the local stack (``LocalStack.submit``) announce a job with ``put_trigger``, as the upstream system does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

TRIGGER_SOURCE = "iics.export"  # the template's trigger rule matches these two
TRIGGER_DETAIL_TYPE = "IICS Export Job Submitted"
IMPORT_TRIGGER_DETAIL_TYPE = "IICS Import Job Submitted"


class StackUnusable(Exception):
    """No such stack, AWS would not describe it, or it lacks an output this command needs."""


class EventRefused(Exception):
    """PutEvents failed, or EventBridge refused the entry (``FailedEntryCount`` above 0)."""


@dataclass(frozen=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def read_stack(cloudformation: Any, name: str, *required: str) -> DeployedStack:
    """The stack ``name``'s outputs and Parameters, with each output in ``required`` present."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise StackUnusable(f"stack {name}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for output in required:
        if not outputs.get(output):
            raise StackUnusable(f"stack {name} has no {output} output; is it iics-export-monitor's (and up to date)?")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    return DeployedStack(name, outputs, parameters)


def put_trigger(events: Any, bus: str, detail: Mapping[str, Any], detail_type: str = TRIGGER_DETAIL_TYPE) -> str:
    """Put the trigger event (``IICS Export Job Submitted``, or ``detail_type``) on ``bus``; its event id.
    An entry EventBridge refused is an error."""
    entry = {"Source": TRIGGER_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail)}
    try:
        response = events.put_events(Entries=[entry | {"EventBusName": bus}])
    except (BotoCoreError, ClientError) as error:
        raise EventRefused(f"PutEvents to {bus}: {error}") from None
    (answer,) = response["Entries"]
    if response.get("FailedEntryCount") or "EventId" not in answer:
        raise EventRefused(
            f"EventBridge refused the event on {bus}: {answer.get('ErrorCode')} {answer.get('ErrorMessage')}"
        )
    return answer["EventId"]
