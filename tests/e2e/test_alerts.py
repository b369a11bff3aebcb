"""Alert routing: an EventBridge rule on the outcome event sends the outcomes that need a person to
the alert topic, worded for people (or in the Amazon Q custom-notification format)."""

from __future__ import annotations

import json
import math
import time

import pytest

from iics_monitor_local import template
from iics_monitor_local.slack_fake import Reply
from iics_monitor_local.stack import QUEUE_TIME_SCALE, LocalStack, TopicInbox
from tests.conftest import load_event
from tests.e2e.conftest import FAILED_OBJECTS, deployed_with_slack, publish, queue_depth, wait_until

ALERTING = [
    "outcome-failed.json",
    "outcome-timed-out.json",
    "outcome-error.json",
    "outcome-successful-with-failed-objects.json",
    "outcome-successful-with-warning.json",
]
QUIET = ["outcome-successful.json"]


def AlertInbox(stack: LocalStack) -> TopicInbox:  # noqa: N802 - reads as the thing it makes
    return TopicInbox(stack, stack.outputs["AlertTopicArn"])


@pytest.fixture
def stack():
    with LocalStack() as deployed:
        yield deployed


@pytest.mark.parametrize("sample", ALERTING)
def test_outcomes_that_need_a_person_alert_once_in_words(stack, sample):
    inbox = AlertInbox(stack)

    detail = publish(stack, sample)

    (notification,) = inbox.messages()
    job = " ".join(filter(None, [detail["jobName"], f"({detail['jobId']})"]))
    assert notification["Subject"].startswith(f"IICS export {detail['state']}") and job in notification["Subject"]
    if detail.get("warning"):
        assert f"Warning:    {detail['warning']}" in notification["Message"]
    body = notification["Message"]
    assert body.startswith(f"IICS export job {job} ended {detail['state']}")
    assert f"Objects:    {detail['objects']['total']} total" in body
    for failed in detail["failedObjects"]:
        assert f"- {failed['name']}" in body and failed["message"] in body
    if detail["log"]:
        assert f"Log:        s3://{detail['log']['bucket']}/{detail['log']['key']}" in body
    else:
        assert f"not archived ({detail['logError']})" in body
    if detail["reason"]:
        assert f"Reason:     {detail['reason']}" in body
    assert "console.aws.amazon.com/states/home" in body


@pytest.mark.parametrize("sample", QUIET)
def test_a_clean_success_does_not_alert(stack, sample):
    inbox = AlertInbox(stack)

    publish(stack, sample)

    assert inbox.messages(expected=1, timeout=1.0) == []


def test_alerts_in_the_amazon_q_custom_notification_format():
    with LocalStack({"AlertFormat": "amazon-q"}) as stack:
        inbox = AlertInbox(stack)

        detail = publish(stack, "outcome-failed.json")

        (message,) = inbox.messages()
        notification = json.loads(message["Message"])
        assert notification["version"] == "1.0" and notification["source"] == "custom"
        assert notification["content"]["textType"] == "client-markdown"
        assert detail["jobName"] in notification["content"]["title"] and "FAILED" in notification["content"]["title"]
        assert detail["log"]["key"] in notification["content"]["description"]


def test_alert_email_is_an_optional_parameter():
    with LocalStack() as without:
        topic = without.outputs["AlertTopicArn"]
        assert without.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    with LocalStack({"AlertEmail": "data-team@example.com"}) as with_email:
        topic = with_email.outputs["AlertTopicArn"]
        (subscription,) = with_email.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "data-team@example.com")


def test_a_failed_job_alerts_end_to_end(pipeline, emulator):
    inbox = AlertInbox(pipeline.stack)
    job_id = emulator.add_job(name="nightly-export", states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)

    run = pipeline.submit({"jobId": job_id})

    assert run.outcome["state"] == "FAILED"
    (message,) = inbox.messages()
    assert message["Subject"] == f"IICS export FAILED: nightly-export ({job_id})"
    assert f"IICS export job nightly-export ({job_id}) ended FAILED." in message["Message"]
    assert "Objects:    3 total, 1 successful, 2 failed" in message["Message"]


def test_a_failed_job_reaches_slack_once(emulator, slack):
    with deployed_with_slack(emulator, slack) as setup:
        job_id = emulator.add_job(name="nightly-export", states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)

        setup.submit({"jobId": job_id})

        assert wait_until(lambda: len(slack.delivered) >= 1)
        time.sleep(0.5)  # nothing more arrives
        (payload,) = slack.delivered
        assert "nightly-export" in payload["blocks"][0]["text"]["text"] and job_id in payload["text"]
        assert queue_depth(setup.stack, "AlertDeadLetterQueue") == 0


def test_a_webhook_that_keeps_failing_parks_the_alert_in_the_dead_letter_queue(emulator, slack):
    slack.fail_always(Reply(500))
    with deployed_with_slack(emulator, slack) as setup:
        publish(setup.stack, "outcome-failed.json")

        assert wait_until(lambda: queue_depth(setup.stack, "AlertDeadLetterQueue") == 1, timeout=90)
    # 5 receives (maxReceiveCount), each trying Slack 3 times
    assert len(slack.requests) == 15


def test_an_alert_slack_refused_comes_back_after_the_queues_visibility_timeout_not_at_once(emulator, slack):
    with deployed_with_slack(emulator, slack) as setup:
        queue_seconds = int(
            setup.stack.client("sqs").get_queue_attributes(
                QueueUrl=setup.stack.resources["AlertQueue"], AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )
        slack.script(*[Reply(500)] * 3)  # one delivery's three attempts fail; the next delivery's post succeeds
        publish(setup.stack, "outcome-failed.json")

        assert wait_until(lambda: len(slack.delivered) == 1, timeout=60)
    times = [post.time for post in slack.requests]
    assert len(times) == 4
    assert times[3] - times[2] >= max(1, math.ceil(queue_seconds * QUEUE_TIME_SCALE))  # 390 s, scaled: 4 s


def test_an_alert_delivered_twice_reaches_slack_once(emulator, slack):
    """EventBridge may deliver one outcome event to the queue twice: its id keeps it to one post."""
    with deployed_with_slack(emulator, slack) as setup:
        event = load_event("outcome-failed.json")
        sqs = setup.stack.client("sqs")
        for _ in range(2):
            sqs.send_message(QueueUrl=setup.stack.resources["AlertQueue"], MessageBody=json.dumps(event))

        def handled() -> int:
            return sum(
                len(i.event.get("Records", []))
                for i in setup.stack.lambda_invocations
                if i.function_name.startswith(setup.stack.resources["NotifySlackFunction"]) and not i.errored
            )

        assert wait_until(lambda: handled() == 2)
        assert len(slack.delivered) == 1
        assert queue_depth(setup.stack, "AlertDeadLetterQueue") == 0


# --- EventBridge -> NotifyTopicFunction, asynchronous as in AWS -----------------------------------------------------


def notify_topic_runs(stack: LocalStack) -> int:
    name = stack.resources["NotifyTopicFunction"]
    return sum(1 for i in stack.lambda_invocations if i.function_name == name)


def dead_letters_of(stack: LocalStack, logical_id: str) -> list[dict]:
    return (
        stack.client("sqs")
        .receive_message(
            QueueUrl=stack.resources[logical_id],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        .get("Messages", [])
    )


def test_a_failed_alert_function_is_run_again_twice_by_lambda_then_parked_in_its_dead_letter_queue(stack):
    inbox = AlertInbox(stack)
    # every run of the function fails (an error boto3 does not retry: a 5xx it would, within one run)
    stack.fail_aws("sns", "Publish", times=3, error="AuthorizationError")

    publish(stack, "outcome-failed.json")

    assert wait_until(lambda: notify_topic_runs(stack) == 3)
    (parked,) = wait_until_found(lambda: dead_letters_of(stack, "AlertDeadLetterQueue"))
    assert json.loads(parked["Body"])["detail"]["state"] == "FAILED"
    assert parked["MessageAttributes"]["ErrorMessage"]["StringValue"]
    time.sleep(0.5)
    assert notify_topic_runs(stack) == 3 and inbox.messages(expected=0) == []


def test_an_alert_function_that_fails_once_is_run_again_and_the_alert_arrives(stack):
    inbox = AlertInbox(stack)
    stack.fail_aws("sns", "Publish", times=1, error="AuthorizationError")

    publish(stack, "outcome-failed.json")

    (message,) = inbox.messages(expected=1, timeout=15)
    assert message["Subject"].startswith("IICS export FAILED")
    # the run that published it is recorded when it returns, which may be just after the message arrives
    assert wait_until(lambda: notify_topic_runs(stack) == 2) and dead_letters_of(stack, "AlertDeadLetterQueue") == []


def test_an_invocation_lambda_refuses_is_tried_again_by_eventbridge_within_the_rules_retry_policy(stack):
    inbox = AlertInbox(stack)
    stack.fail_lambda("NotifyTopicFunction", "TooManyRequestsException", 429, times=3)

    publish(stack, "outcome-failed.json")

    (message,) = inbox.messages(expected=1, timeout=15)
    assert message["Subject"].startswith("IICS export FAILED") and notify_topic_runs(stack) == 1


def test_an_invocation_refused_past_the_retry_policy_goes_to_the_targets_dead_letter_queue(stack):
    retry_policy = next(  # the template's own: the alert rule's target
        target["RetryPolicy"]
        for resource in template.load()["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"]["Targets"]
        if target["Arn"] == {"Fn::GetAtt": ["NotifyTopicFunction", "Arn"]}
    )
    refusals = retry_policy["MaximumRetryAttempts"] + 1
    stack.fail_lambda("NotifyTopicFunction", "TooManyRequestsException", 429, times=refusals)

    publish(stack, "outcome-failed.json")

    (parked,) = wait_until_found(lambda: dead_letters_of(stack, "AlertDeadLetterQueue"), timeout=30)
    assert parked["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "TooManyRequestsException"
    assert json.loads(parked["Body"])["detail"]["state"] == "FAILED" and notify_topic_runs(stack) == 0


def wait_until_found(find, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while not (found := find()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found
