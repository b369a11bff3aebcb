"""verdicts: a password IICS refused is tried once per stack, not once per job or container.

Each "container" here is its own IicsClient with its own SecretVerdicts (its own memory), logging in
over real HTTP to the emulator; they share the secret (Secrets Manager in moto) and the verdicts table
(DynamoDB in moto, made from template.yaml)."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from iics_monitor.client import IicsClient
from iics_monitor.credentials import SecretVersion, secret_credentials
from iics_monitor.errors import IicsUnavailable, LoginRefused, NotSent
from iics_monitor.slack import SlackRejected, SlackWebhook, secret_webhook_url
from iics_monitor.verdicts import ACCEPTED, REFUSED, TRYING, SecretVerdicts
from iics_monitor_local.emulator import REFERENCE_JOB_ID, Fault
from iics_monitor_local.slack_fake import FakeSlack
from tests.conftest import EMULATOR_HOSTS, PASSWORD, USERNAME
from tests.unit.layer.conftest import create_table_from_template

TABLE = "secret-verdicts"
SECRET = "iics-export-monitor/credentials"
WRONG = "Wr0ng-" + PASSWORD


class AtomicDynamoDB:
    """DynamoDB applies each request to an item atomically; moto, called from several threads, does not.
    This client passes each request to moto one at a time, as DynamoDB would decide them."""

    def __init__(self, client) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name):
        call = getattr(self._client, name)

        def atomic(**kwargs):
            with self._lock:
                return call(**kwargs)

        return atomic


@pytest.fixture
def aws(dynamodb_client):
    with mock_aws():
        create_table_from_template(dynamodb_client, "SecretVerdictTable", TABLE)
        yield AtomicDynamoDB(dynamodb_client), boto3.client("secretsmanager")


def put_secret(secrets, password: str, emulator) -> str:
    """Create or update the IICS secret; return its new version id."""
    value = json.dumps({"username": USERNAME, "password": password, "loginUrl": emulator.url})
    try:
        return secrets.create_secret(Name=SECRET, SecretString=value)["VersionId"]
    except secrets.exceptions.ResourceExistsException:
        return secrets.put_secret_value(SecretId=SECRET, SecretString=value)["VersionId"]


def container(aws) -> IicsClient:
    """A new warm container: its own client, session and memory of verdicts; the stack's table."""
    dynamodb, secrets = aws
    return IicsClient(
        secret_credentials(SECRET, secrets), verdicts=SecretVerdicts(TABLE, dynamodb), hosts=EMULATOR_HOSTS
    )


@pytest.fixture
def ref_job(emulator):
    return emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])


def refused_logins(emulator) -> int:
    return sum(1 for r in emulator.requests if r.route == "login" and r.status == 400)


def verdict(aws, version_id: str) -> dict:
    item = aws[0].get_item(TableName=TABLE, Key={"secretVersion": {"S": f"{SECRET}#{version_id}"}}).get("Item")
    return item or {}


def at_once(clients: list[IicsClient]) -> list[Exception]:
    """Each client (container) polls the reference job at the same moment; the errors they met."""
    start, errors = threading.Barrier(len(clients)), []

    def poll(client: IicsClient) -> None:
        start.wait()
        try:
            client.get_status(REFERENCE_JOB_ID)
        except Exception as error:  # noqa: BLE001 - each container's error is what the test looks at
            errors.append(error)

    threads = [threading.Thread(target=poll, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_ten_containers_at_once_with_a_wrong_password_make_one_refused_login(aws, emulator, ref_job):
    version = put_secret(aws[1], WRONG, emulator)

    errors = at_once([container(aws) for _ in range(10)])

    assert refused_logins(emulator) == 1 and emulator.logins == 1
    assert len(errors) == 10 and all(isinstance(e, LoginRefused) for e in errors)
    assert {e.status for e in errors} == {400} and {e.code for e in errors} == {"IDS_085"}
    assert all(f"version {version[:8]} of secret {SECRET}" in str(e) for e in errors)
    assert all("new version is tried at once" in str(e) for e in errors)
    assert verdict(aws, version)["verdict"]["S"] == REFUSED


def test_a_refused_version_is_not_tried_again_by_any_container(aws, emulator, ref_job):
    put_secret(aws[1], WRONG, emulator)
    first = container(aws)
    with pytest.raises(LoginRefused):
        first.get_status(REFERENCE_JOB_ID)

    for client in (first, container(aws), container(aws)):
        with pytest.raises(LoginRefused, match="No function of this stack logs in with version"):
            client.get_status(REFERENCE_JOB_ID)

    assert emulator.logins == 1


def test_a_new_version_of_the_secret_is_tried_at_once(aws, emulator, ref_job):
    put_secret(aws[1], WRONG, emulator)
    client = container(aws)
    with pytest.raises(LoginRefused):
        client.get_status(REFERENCE_JOB_ID)

    fixed = put_secret(aws[1], PASSWORD, emulator)

    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert emulator.logins == 2 and refused_logins(emulator) == 1
    assert verdict(aws, fixed)["verdict"]["S"] == ACCEPTED


def test_an_accepted_password_refused_later_stops_every_container(aws, emulator, ref_job):
    put_secret(aws[1], PASSWORD, emulator)
    containers = [container(aws) for _ in range(3)]
    for client in containers:
        client.get_status(REFERENCE_JOB_ID)  # accepted: each container logs in freely
    assert emulator.logins == 3

    # the password is changed in IICS, not in the secret, and the sessions end
    emulator.password = "changed-in-iics"
    emulator.invalidate_sessions()
    for client in containers:
        with pytest.raises(LoginRefused):
            client.get_status(REFERENCE_JOB_ID)

    assert emulator.logins == 4 and refused_logins(emulator) == 1


def test_ten_containers_whose_sessions_end_after_the_password_changed_in_iics_make_one_refused_login(
    aws, emulator, ref_job
):
    put_secret(aws[1], PASSWORD, emulator)
    containers = [container(aws) for _ in range(10)]
    assert at_once(containers) == [] and emulator.logins == 10  # the password works: every container logs in

    # the password is changed in IICS (not in the secret), and IICS ends every session
    emulator.password = "changed-in-iics"
    emulator.invalidate_sessions()
    errors = at_once(containers)

    assert refused_logins(emulator) == 1
    assert len(errors) == 10 and all(isinstance(e, LoginRefused) for e in errors)


def test_a_record_the_monitor_did_not_write_neither_blocks_nor_loops(aws, emulator, ref_job):
    version = put_secret(aws[1], PASSWORD, emulator)
    aws[0].put_item(TableName=TABLE, Item={"secretVersion": {"S": f"{SECRET}#{version}"}})  # no verdict, no expiry

    assert container(aws).get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert verdict(aws, version)["verdict"]["S"] == ACCEPTED


def test_a_function_that_died_holding_the_lease_does_not_block_the_others(aws, emulator, ref_job):
    version = put_secret(aws[1], PASSWORD, emulator)
    stale = {"verdict": {"S": TRYING}, "leaseUntil": {"N": str(time.time() - 1)}, "leaseOwner": {"S": "dead"}}
    aws[0].put_item(
        TableName=TABLE,
        Item={"secretVersion": {"S": f"{SECRET}#{version}"}, "expiresAt": {"N": str(int(time.time()) + 60)}} | stale,
    )

    assert container(aws).get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert verdict(aws, version)["verdict"]["S"] == ACCEPTED


def test_a_function_waiting_on_another_ones_try_sends_nothing_when_its_time_runs_out(aws, emulator, ref_job):
    version = put_secret(aws[1], PASSWORD, emulator)
    busy = {"verdict": {"S": TRYING}, "leaseUntil": {"N": str(time.time() + 60)}, "leaseOwner": {"S": "other"}}
    aws[0].put_item(
        TableName=TABLE,
        Item={"secretVersion": {"S": f"{SECRET}#{version}"}, "expiresAt": {"N": str(int(time.time()) + 600)}} | busy,
    )
    client = container(aws)
    client.request_seconds = 1.0

    started = time.monotonic()
    with client.within(time.monotonic() + 1.5), pytest.raises(NotSent, match="another function is logging in"):
        client.get_status(REFERENCE_JOB_ID)

    assert time.monotonic() - started < 1.5
    assert emulator.requests == []


def test_a_waiting_function_logs_in_once_the_other_one_was_accepted(aws, emulator, ref_job):
    version = put_secret(aws[1], PASSWORD, emulator)
    holder = SecretVerdicts(TABLE, aws[0])
    accepted = threading.Event()

    def slow_login():
        accepted.wait(5)
        return "session"

    other = threading.Thread(
        target=holder.log_in,
        args=(SecretVersion(SECRET, version), slow_login),
        kwargs={"login_seconds": 5.0, "seconds_left": lambda: 60.0},
    )
    other.start()
    time.sleep(0.2)  # the other function holds the lease
    waiting = container(aws)
    threading.Timer(0.5, accepted.set).start()

    assert waiting.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    other.join(5)
    assert emulator.logins == 1  # the waiting one logged in after the verdict, not alongside


def test_a_login_that_neither_succeeds_nor_is_refused_lets_the_next_function_try(aws, emulator, ref_job):
    version = put_secret(aws[1], PASSWORD, emulator)
    emulator.add_fault(Fault(route="login", status=502))

    with pytest.raises(IicsUnavailable):
        container(aws).get_status(REFERENCE_JOB_ID)
    assert verdict(aws, version) == {}  # the lease is given back at once

    assert container(aws).get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert emulator.logins == 2


def test_without_the_verdicts_table_nothing_is_sent_to_iics(aws, emulator, ref_job):
    put_secret(aws[1], PASSWORD, emulator)
    client = IicsClient(
        secret_credentials(SECRET, aws[1]), verdicts=SecretVerdicts("no-such-table", aws[0]), hosts=EMULATOR_HOSTS
    )

    with pytest.raises(NotSent, match="record of refused logins could not be read"):
        client.get_status(REFERENCE_JOB_ID)

    assert emulator.requests == []


# --- the Slack webhook ------------------------------------------------------------------------------------------------

SLACK_SECRET = "iics-export-monitor/slack"


def webhook(aws, slack_url_secret: str = SLACK_SECRET) -> SlackWebhook:
    dynamodb, secrets = aws
    return SlackWebhook(
        secret_webhook_url(slack_url_secret, secrets, loopback_http=True),
        sleep=lambda s: None,
        verdicts=SecretVerdicts(TABLE, dynamodb),
        loopback_http=True,
    )


@pytest.mark.parametrize("status", [403, 404, 410])
def test_a_webhook_slack_answers_as_gone_is_not_posted_to_again_until_the_secret_changes(aws, status):
    secrets = aws[1]
    with FakeSlack() as slack:
        secrets.create_secret(Name=SLACK_SECRET, SecretString=json.dumps({"webhookUrl": slack.url}))
        slack.fail_always((status,))

        with pytest.raises(SlackRejected):
            webhook(aws).post({"text": "first alert"})
        for _ in range(3):  # later alerts, in this container and in new ones
            with pytest.raises(SlackRejected, match="no alert is posted with it again"):
                webhook(aws).post({"text": "another alert"})
        assert len(slack.requests) == 1

        slack.recover()  # a new webhook that works
        secrets.put_secret_value(SecretId=SLACK_SECRET, SecretString=json.dumps({"webhookUrl": slack.url}))
        webhook(aws).post({"text": "after the fix"})

    assert len(slack.requests) == 2 and slack.delivered == [{"text": "after the fix"}]
