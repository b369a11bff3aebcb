"""The alert topic's words: subject and body for people, configuration, publishing."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from iics_monitor.alert_topic import TopicConfig, publish_alert
from iics_monitor.alerts import Alert, subject, text_body
from iics_monitor.errors import ConfigError, InvalidInput
from iics_monitor.status import WARNING_PREFIX, read_state
from tests.conftest import ROOT, load_event

REGION = "us-east-1"


def alert(name: str, **detail) -> Alert:
    event = load_event(name)
    event["detail"].update(detail)
    return Alert.from_event(event)


def test_subject_names_state_job_and_id():
    assert subject(alert("outcome-failed.json")) == "IICS export FAILED: promote-to-prod (k7A75aikpuMNj4otBBZWnz)"
    assert (
        subject(alert("outcome-successful-with-failed-objects.json"))
        == "IICS export SUCCESSFUL with 1 failed object: weekly-backup (2UL9ZO9Z3OJeuxbL2cYbaX)"
    )
    assert subject(alert("outcome-error.json", jobId=None)) == "IICS export ERROR: unknown job"


def test_a_success_with_a_warning_says_so_in_the_subject_and_the_body():
    warned = alert("outcome-successful-with-warning.json")

    assert subject(warned) == "IICS export SUCCESSFUL with a warning: testJob1 (7evG9CokA1whk8ehF3opKM)"
    body = text_body(warned, REGION)
    assert body.startswith("IICS export job testJob1 (7evG9CokA1whk8ehF3opKM) ended SUCCESSFUL with a warning.\n")
    assert "Warning:    IICS reported PARTIAL_SUCCESS: Export completed with errors." in body
    assert "State:      SUCCESSFUL (IICS: PARTIAL_SUCCESS)" in body


def test_the_alert_rule_matches_warnings_by_the_prefix_every_warning_has():
    rule = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]["AlertRule"]["Properties"]["EventPattern"]
    patterns = [p for p in rule["detail"]["$or"] if "warning" in p]

    assert patterns == [{"state": ["SUCCESSFUL"], "warning": [{"prefix": WARNING_PREFIX}]}]
    assert read_state("PARTIAL_SUCCESS", "m", end_time=None).warning.startswith(WARNING_PREFIX)


def test_failed_objects_name_the_label_before_a_warning():
    assert subject(alert("outcome-successful-with-failed-objects.json", warning="IICS reported WARNING")).startswith(
        "IICS export SUCCESSFUL with 1 failed object:"
    )


def test_subject_is_what_sns_accepts_ascii_one_line_under_100():
    text = subject(alert("outcome-failed.json", jobName="Früh-Export\n" + "x" * 200))
    assert len(text) < 100 and text.isascii() and "\n" not in text and text.endswith("...")


def test_body_tells_what_happened_why_what_failed_and_where_the_log_is():
    body = text_body(alert("outcome-failed.json"), REGION)

    assert body.startswith("IICS export job promote-to-prod (k7A75aikpuMNj4otBBZWnz) ended FAILED.\n")
    assert "Objects:    3 total, 1 successful, 2 failed" in body
    assert "- tf_month_end (TASKFLOW, /Finance): Referenced object mt_close_books not found" in body
    assert "Log:        s3://iics-export-monitor-archivebucket-1a2b3c4d5e6f/iics-export-logs/" in body
    assert f"https://{REGION}.console.aws.amazon.com/s3/object/" in body
    assert f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}#/v2/executions/details/" in body


def test_body_caps_failed_objects_at_ten_and_counts_the_rest():
    failed = [{"id": f"id{i}", "name": f"obj{i}", "path": "/p", "type": "MTT", "message": "boom"} for i in range(25)]
    body = text_body(
        alert("outcome-failed.json", failedObjects=failed, objects={"total": 40, "successful": 0, "failed": 30}), REGION
    )

    assert body.count("\n- obj") == 10
    assert "...and 20 more" in body


def test_body_of_an_error_says_why_and_that_no_log_was_kept():
    body = text_body(alert("outcome-error.json"), REGION)

    assert "Reason:     IICS login refused" in body and "Error type: LoginRefused" in body
    assert "Log:        not archived (no log archived: the monitor stopped with an error)" in body


def test_an_event_that_is_not_an_outcome_is_refused():
    with pytest.raises(InvalidInput):
        Alert.from_event({"source": "someone.else", "detail-type": "x", "detail": {}})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ALERT_FORMAT": "text"}, "ALERT_TOPIC_ARN"),
        ({"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts"}, "ALERT_FORMAT"),
        ({"ALERT_TOPIC_ARN": "not-an-arn", "ALERT_FORMAT": "text"}, "ALERT_TOPIC_ARN"),
        ({"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts", "ALERT_FORMAT": "html"}, "ALERT_FORMAT"),
    ],
)
def test_topic_config_names_what_is_wrong(env, named):
    with pytest.raises(ConfigError, match=named):
        TopicConfig.from_env(env)


def publish_and_receive(event: dict, fmt: str) -> tuple[dict, dict]:
    """Publish to a topic in moto and read the notification back from a subscribed queue, as an inbox would."""
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        result = publish_alert(event, sns=sns, config=TopicConfig(topic, fmt))

        (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
        return result, json.loads(message["Body"])


@pytest.mark.parametrize("fmt", ["text", "amazon-q"])
def test_publish_sends_subject_and_the_chosen_format(fmt):
    result, notification = publish_and_receive(load_event("outcome-timed-out.json"), fmt)

    assert notification["MessageId"] == result["messageId"]
    assert notification["Subject"] == "IICS export TIMED_OUT: full-org-export (5FA0DnMzeuDbYZnn3hdto9)"
    if fmt == "text":
        assert notification["Message"].startswith("IICS export job full-org-export")
    else:
        assert json.loads(notification["Message"])["source"] == "custom"


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQtb25l"
ECHO = f'IICS login refused: could not process {{"username": "a", "password": "Pw-echoed-9"}}; session {JWT}'


@pytest.mark.parametrize("fmt", ["text", "amazon-q"])
def test_no_alert_repeats_a_token_or_password_an_outcome_carries(fmt):
    event = load_event("outcome-error.json")
    event["detail"] |= {"reason": ECHO, "message": ECHO, "jobName": f"job {JWT}", "logError": ECHO}

    _, notification = publish_and_receive(event, fmt)

    sent = json.dumps(notification)  # the subject and the body, as the inbox gets them
    assert "Pw-echoed-9" not in sent and "eyJzdWIi" not in sent and "password" in sent
