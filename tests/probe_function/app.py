"""A probe deployed in place of a function's code, by tests of the local Lambda runtime: it answers
what its container sees (environment, process, identity, permissions) and can be made slow.

Invoked with anything but a probe request (``{"probe": true, ...}``), by the state machine for instance,
it hangs, as a function stuck on a peer would."""

import os
import time

import boto3


def lambda_handler(event, context):
    print(f"probe {event.get('marker', '-')} pid={os.getpid()}", flush=True)
    if not event.get("probe"):
        time.sleep(3600)
    time.sleep(float(event.get("sleep", 0)))
    answer = {
        "pid": os.getpid(),
        "environment": dict(os.environ),
        "remainingMs": context.get_remaining_time_in_millis(),
    }
    if event.get("identity"):
        answer["identity"] = boto3.client("sts").get_caller_identity()["Arn"]
    answer["calls"] = [_call(*call) for call in event.get("calls", [])]  # [service, method, parameters]
    return answer


def _call(service: str, method: str, parameters: dict) -> str:
    """ "allowed", or the error code AWS answered."""
    try:
        getattr(boto3.client(service), method)(**parameters)
        return "allowed"
    except Exception as error:  # noqa: BLE001 - the probe reports what AWS answered
        return getattr(error, "response", {}).get("Error", {}).get("Code", repr(error))
