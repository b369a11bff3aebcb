"""An emulated AWS account (moto) built from ``template.yaml`` itself.

The template is translated by aws-sam-translator, exactly as ``sam deploy`` would after
``sam package``, and created by moto's CloudFormation. Every function name, handler, environment
variable, layer, rule and definition substitution comes from the template; nothing here is a copy.

moto's gaps, and how this harness closes each (search for ``GAP`` below):
- GAP lambda: moto runs Lambda code in Docker. Each function runs in worker processes of its own
  instead (``lambda_runtime``): exactly its environment, its role's credentials, its Timeout
  (``Sandbox.Timedout``), cold then warm workers, up to ``workers`` invocations of one function at
  once, and its output kept per invocation.
- GAP server: the workers reach the local AWS over HTTP: moto's server on 127.0.0.1, started here,
  sharing moto's state with this process's clients. ``aws_faults`` sits in front of it, so ``fail_aws``
  strikes a function's call as a real error answer (which boto3 retries as it would a real one).
- GAP iam: moto's IAM enforcement is switched on once the stack is deployed. This process's own clients
  act as an administrator user (``ADMINISTRATOR``); a function acts as its execution role, and the
  state machine's calls as its role (GAP sfn-role: moto's interpreter signs with a made-up key). moto
  cannot enforce everything, and two of its mistakes are mended here:
  - GAP iam-resource: moto knows the resource of a call only for S3, SQS, IAM and STS; for the other
    services it passes "*", which no statement naming a resource matches, so only the action is
    checked there. A Condition on a context key moto does not supply (``kms:ViaService``, ...) counts
    as met, and resource policies (bucket, queue, key policies) are not enforced at all.
  - GAP iam-action: moto names an action after the API operation; where IAM's name differs
    (``lambda:Invoke`` is ``lambda:InvokeFunction``) the IAM name is matched.
  - GAP iam-cfn: moto's CloudFormation keeps a role's inline policy as an object its enforcement
    cannot read; it is read as the document it is.
  - GAP iam-signature: moto checked a GET's signature over its headers; it is checked over its body.
  - GAP iam-error: moto answered every refusal as XML, which JSON services' clients read as code
    "403"; they get ``AccessDeniedException`` (SQS ``AccessDenied``) as from AWS.
- GAP sfn: moto's CloudFormation creates state machines in a backend that does not execute them and
  ignores ``DefinitionSubstitutions``. The harness substitutes the template's values and creates the
  same state machine (same name, so the same ARN) in the executing backend.
- GAP layer: moto's CloudFormation gives a layer version an empty physical id, so functions lose
  their ``Layers``. The harness attaches the layers each function names in the template.
- GAP policies: moto's CloudFormation skips ``AWS::S3::BucketPolicy`` and ``AWS::SQS::QueuePolicy``
  (with a warning). Nothing local depends on them; cfn-lint and the template tests check them.
- GAP conditions: moto's CloudFormation turns Number parameters into numbers, so a condition like
  ``!Equals [!Ref ArchiveExpirationDays, "0"]`` never held. The harness compares them as text, as
  CloudFormation does.
- GAP novalue: moto's CloudFormation leaves ``!Ref AWS::NoValue`` in a list as a null item (a rule
  target under ``!If`` becomes ``None``). The harness drops such items, as CloudFormation does.
- GAP sqs: moto invokes an SQS-triggered function once, when a message is sent, deletes the whole
  batch whatever the function answers, and never delivers again. The harness takes those event
  source mappings over and polls like Lambda does: it deletes only the records that succeeded
  (ReportBatchItemFailures); the rest come back after the queue's VisibilityTimeout, scaled by
  ``QUEUE_TIME_SCALE`` for tests (the alert queue's 390 s become 4 s), and a record that keeps failing
  moves to the dead-letter queue after maxReceiveCount (moto counts the receives).
- GAP ddb-atomic: moto's DynamoDB changes an item without a lock, so writes from parallel functions
  were lost; each write is applied whole, one at a time, as DynamoDB applies it.
- GAP events: moto's EventBridge delivers rule targets only to SQS, logs and buses. The harness
  also delivers to Step Functions, SNS and Lambda targets of any matching rule.
- GAP async: moto runs a Lambda target inside PutEvents, once, and forgets a function error. The
  harness invokes it asynchronously (``async_lambda``): Lambda's two retries of a failed function,
  then the function's dead-letter queue; EventBridge's retries of a refused invocation within the
  target's RetryPolicy, then the target's dead-letter queue; waits scaled by ``QUEUE_TIME_SCALE``.
  ``submit`` returns once the function the announcement reached has run once.
- GAP dlq: moto's Lambda keeps no ``DeadLetterConfig``; the harness reads each function's from the
  template for the asynchronous deliveries above.
- GAP limits: moto's Step Functions starts an execution with any input; AWS refuses one over
  256 KiB. The harness refuses it the same way (``aws_faults.STATE_DATA_LIMIT_BYTES``).
- LOCAL http: the functions may reach the IICS emulator and the fake Slack over plain http on
  127.0.0.1 only because the harness sets ``ALLOW_LOOPBACK_HTTP=true`` for them (``loopback_http``);
  the template never does, so a deployment speaks https to Informatica and Slack only.

What still differs from AWS is listed in docs/reliability.md ("The local stack and AWS").
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import math
import os
import re
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.config import Config
from moto import mock_aws
from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.cloudformation import parsing as cfn_parsing
from moto.core.authorization import enable_iam_authentication
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, IAMRequest, IAMRequestBase
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import sqs_backends
from moto.sts.models import sts_backends
from werkzeug.serving import make_server

from iics_monitor.hosts import LOOPBACK_HTTP_VARIABLE  # hosts imports no Powertools
from iics_monitor_local import template
from iics_monitor_local.async_lambda import AsyncLambda
from iics_monitor_local.aws_faults import Faults, protocol_of
from iics_monitor_local.deployed import TRIGGER_DETAIL_TYPE, put_trigger
from iics_monitor_local.lambda_runtime import FunctionSpec, Runtime
from iics_monitor_local.samconfig import STACK_NAME
from iics_monitor_local.template import PROJECT_ROOT, TEMPLATE

# docs/orgs.md: an org is its secret name's last segment
ORG_SECRET_PREFIX = "iics-export-monitor/orgs/"  # noqa: S105 - a name, not a secret

ARTIFACT_BUCKET = "iics-monitor-local-artifacts"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
EXECUTION_ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class LambdaInvocation:
    function_name: str
    event: Any
    result: Any
    errored: bool
    logs: str
    started_at: float  # when its worker got the request: waiting for a free worker and a cold start's init excluded
    finished_at: float = field(default_factory=time.time)
    cold: bool = False  # the first invocation of a new worker (a cold start)

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at


@dataclass
class _Registry:
    """What the patched moto needs while a stack runs: code folders by artifact key, the functions'
    workers, faults to inject, and a record of invocations."""

    code_dirs: dict[str, Path] = field(default_factory=dict)
    invocations: list[LambdaInvocation] = field(default_factory=list)
    # function name -> Lambda service errors (code, HTTP status) its next invocations meet
    service_faults: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    listeners: list[Callable[[LambdaInvocation], None]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    # event id -> the (rule, event) pairs it was delivered to, for redelivery
    delivered_events: dict[str, list[tuple[Any, dict]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # GAP async: the running stack's EventBridge -> Lambda deliveries
    async_lambda: AsyncLambda | None = None
    # GAP lambda: the functions' worker processes
    runtime: Runtime | None = None
    # GAP sfn-role: the role the state machine's calls are made as
    state_machine_role: str | None = None


_registry = _Registry()


class LambdaServiceError(JsonRESTError):
    """An error of the Lambda service itself (throttling, 5xx), not of the function's code."""

    def __init__(self, error_code: str, status: int) -> None:
        super().__init__(error_code, f"injected by the local stack: {error_code}")
        self.code = status


def _invoke_in_worker(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
    """GAP lambda: run the function in a worker process of its own (``lambda_runtime``)."""
    pending = _registry.service_faults.get(self.function_name)
    if pending:
        raise LambdaServiceError(*pending.pop(0))
    payload = json.loads(event) if isinstance(event, str) else (event or {})
    answer = _registry.runtime.invoke(_function_spec(self), json.dumps(payload))
    invocation = LambdaInvocation(  # started: when its worker got it (a cold start's init and a wait before)
        self.function_name, payload, answer.result, answer.errored, answer.logs, answer.started_at, cold=answer.cold
    )
    with _registry.lock:
        _registry.invocations.append(invocation)
        listeners = list(_registry.listeners)
    for listener in listeners:
        listener(invocation)
    return json.dumps(answer.result), answer.errored, answer.logs


def _function_spec(fn: LambdaFunction) -> FunctionSpec:
    """A worker's start, from the deployed function: its code, layers, environment, limits and role."""
    layer_dirs = []
    for layer in fn.layers:
        layer_dir = _registry.code_dirs.get(f"layer:{layer['Arn'].rsplit(':', 2)[-2]}")
        if layer_dir is not None:
            layer_dirs.append(layer_dir)
    return FunctionSpec(
        name=fn.function_name,
        arn=fn.function_arn,
        handler=fn.handler,
        code_dir=_registry.code_dirs[fn.code["S3Key"]],
        layer_dirs=tuple(layer_dirs),
        environment={k: str(v) for k, v in (fn.environment_vars or {}).items()},
        timeout_seconds=float(fn.timeout),
        memory_mb=int(fn.memory_size),
        role_arn=fn.role,
    )


_original_clean_json = cfn_parsing.clean_json


def _clean_json_without_novalue(resource_json: Any, resources_map: Any) -> Any:
    """GAP novalue: CloudFormation removes list items that resolve to AWS::NoValue."""
    cleaned = _original_clean_json(resource_json, resources_map)
    if isinstance(resource_json, list) and isinstance(cleaned, list):
        return [item for item in cleaned if item is not None]
    return cleaned


_original_parse_condition = cfn_parsing.parse_condition


def _parse_condition_as_strings(condition: Any, resources_map: Any, condition_map: dict[str, Any]) -> bool:
    """GAP conditions: CloudFormation compares parameter values as strings; moto turns Number
    parameters into numbers, so ``!Equals [!Ref SomeNumber, "0"]`` would never hold."""
    if isinstance(condition, dict) and list(condition) == ["Fn::Equals"]:
        left, right = (_clean_json_without_novalue(v, resources_map) for v in condition["Fn::Equals"])
        if isinstance(left, int | float) or isinstance(right, int | float):
            return _number_text(left) == _number_text(right)
    return _original_parse_condition(condition, resources_map, condition_map)


def _number_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


_original_send_to_targets = Rule.send_to_targets


def _send_to_all_targets(self: Rule, original_event: dict, transform_input: bool = True) -> None:
    """GAP events: moto delivers to SQS, logs and buses (and raises for other targets); this
    delivers to Step Functions, SNS and Lambda targets too, with the whole event as input (Lambda
    targets asynchronously, GAP async)."""
    ours = [t for t in self.targets if t["Arn"].split(":")[2] in ("states", "sns", "lambda")]
    delivered = _registry.delivered_events.setdefault(str(original_event.get("id")), [])
    if all(rule is not self for rule, _ in delivered):
        delivered.append((self, original_event))
    theirs = copy.copy(self)
    theirs.targets = [t for t in self.targets if t not in ours]
    _original_send_to_targets(theirs, original_event, transform_input)
    if not ours or not self.event_pattern.matches_event(original_event):
        return
    for target in ours:
        arn = target["Arn"]
        service = arn.split(":")[2]
        body = _target_input(target, original_event)
        if service == "states":
            name = str(original_event.get("id") or uuid.uuid4())[:80]
            boto3.client("stepfunctions", region_name=self.region_name).start_execution(
                stateMachineArn=arn, name=name, input=body
            )
        elif service == "sns":
            boto3.client("sns", region_name=self.region_name).publish(TopicArn=arn, Message=body)
        elif _registry.async_lambda is not None:
            _registry.async_lambda.deliver(str(original_event.get("id")), target, body)


def _target_input(target: dict, event: dict) -> str:
    """What EventBridge sends a target: the event, or its Input / InputPath / InputTransformer."""
    if "Input" in target:
        return target["Input"]
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        (match,) = parse(target["InputPath"]).find(event)
        return json.dumps(match.value)
    transformer = target.get("InputTransformer")
    if transformer:
        rendered = EventTemplateParser.parse(
            input_template=transformer["InputTemplate"],
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return rendered if isinstance(rendered, str) else json.dumps(rendered)
    return json.dumps(event)


# GAP sqs: a failed record comes back after its queue's VisibilityTimeout times this (at least 1 s), so
# that tests of redelivery take seconds, not minutes.
QUEUE_TIME_SCALE = 0.01


class _QueuePoller(threading.Thread):
    """GAP sqs: one SQS event source mapping, polled the way Lambda's poller does it."""

    def __init__(
        self, queue_url: str, queue_arn: str, function_arn: str, batch_size: int, redelivery_seconds: int
    ) -> None:
        super().__init__(name=f"sqs-poller-{queue_arn.rsplit(':', 1)[-1]}", daemon=True)
        self.queue_url, self.queue_arn, self.function_arn, self.batch_size = (
            queue_url,
            queue_arn,
            function_arn,
            batch_size,
        )
        self.redelivery_seconds = redelivery_seconds  # the queue's VisibilityTimeout, scaled
        self.stopped = threading.Event()

    def run(self) -> None:
        sqs, lam = boto3.client("sqs", region_name=REGION), boto3.client("lambda", region_name=REGION)
        while not self.stopped.is_set():
            messages = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                self.stopped.wait(0.05)
                continue
            answer = lam.invoke(FunctionName=self.function_arn, Payload=json.dumps(self._event(messages)).encode())
            result = json.loads(answer["Payload"].read() or b"null")
            if answer.get("FunctionError"):
                failed = {m["MessageId"] for m in messages}
            else:
                reported = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
                failed = {f.get("itemIdentifier") for f in reported}
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.redelivery_seconds,
                    )
                else:
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.stopped.wait(0.05)

    def _event(self, messages: list[dict]) -> dict:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }


def _queue_attribute(sqs: Any, queue_url: str, name: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[name])["Attributes"][name]


def _zip_dir(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*.py")):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _stop_execution(sfn: Any, execution_arn: str, attempts: int = 40) -> None:
    # moto's worker sets up its environment in its own thread; stopping before that fails.
    for _ in range(attempts):
        try:
            sfn.stop_execution(executionArn=execution_arn, cause="local stack closed")
            return
        except AttributeError:
            time.sleep(0.05)


def quiet_moto() -> None:
    """For command-line use: hide moto's warnings about resources it skips, and the interpreter's
    error log lines for Catch-handled failures, which the outcome event already reports."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)


class _QuietRequestHandler(MotoRequestHandler):
    """moto's server request handler without a line on stderr for every request (errors still show)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


ADMINISTRATOR = "local-stack-administrator"  # who this process's own clients (tests, command line) act as
WORKERS_PER_FUNCTION = 4  # warm workers that serve one function's invocations at once


class LocalStack:
    """The template, deployed into moto. Use as a context manager.

    ``parameters`` overrides template Parameters, as ``sam deploy --parameter-overrides`` would.
    ``orgs`` maps further org names to their logins (``{"username", "password", "loginUrl"}``): each
    goes into a secret ``iics-export-monitor/orgs/<org>`` before the deploy, and IicsOrgSecretArns
    lists them, as docs/orgs.md tells an operator to do.
    ``loopback_http`` lets the functions use plain http to this machine, where the emulators listen;
    False runs them as deployed (https to Informatica only). ``workers`` is how many invocations of one
    function run at once; ``reuse_workers=False`` makes every invocation a cold start (a new container).
    """

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        template: Path = TEMPLATE,
        *,
        loopback_http: bool = True,
        workers: int = WORKERS_PER_FUNCTION,
        reuse_workers: bool = True,
        orgs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.template_path = template
        self.orgs = dict(orgs or {})
        self.org_secret_arns: dict[str, str] = {}
        self.loopback_http = loopback_http
        self.workers, self._reuse_workers = workers, reuse_workers
        self.parameters = {k: str(v) for k, v in (parameters or {}).items()}
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._patches: contextlib.ExitStack | None = None
        self.outputs: dict[str, str] = {}
        self.resources: dict[str, str] = {}
        self.endpoint_url = ""

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        if _registry.runtime is not None:  # moto's backends, its IAM switch and the registry are global
            raise RuntimeError("another LocalStack is running in this process; close it first")
        self._patches = patches = contextlib.ExitStack()
        try:
            patches.enter_context(_environment(_DEPLOYER))
            patches.enter_context(self._mock)
            patches.enter_context(_patched(LambdaFunction, "_invoke_lambda", _invoke_in_worker))
            patches.enter_context(_patched(Rule, "send_to_targets", _send_to_all_targets))
            patches.enter_context(_patched(cfn_parsing, "clean_json", _clean_json_without_novalue))
            patches.enter_context(_patched(cfn_parsing, "parse_condition", _parse_condition_as_strings))
            patches.enter_context(_patched(IAMPolicyStatement, "_check_element_matches", _statement_matches))
            patches.enter_context(_patched(IAMPolicy, "__init__", _policy_from_document))
            patches.enter_context(_patched(IAMRequestBase, "_create_aws_request", _request_as_signed))
            patches.enter_context(_patched(IAMRequest, "_raise_access_denied", _access_denied_as_the_service_says))
            for name in _DYNAMODB_WRITES:
                patches.enter_context(_patched(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name))))
            _cold_start()
            client_hook = _registry.faults.client_hook(BaseClient._make_api_call)
            patches.enter_context(_patched(BaseClient, "_make_api_call", client_hook))
            for module in _interpreter_modules():
                patches.enter_context(_patched(module, "boto_client_for", _state_machine_client))
            patches.enter_context(_environment(_administrator()))
            self.endpoint_url = self._serve_aws()
            _registry.runtime = Runtime(
                _role_credentials, self._local_environment(), workers=self.workers, reuse=self._reuse_workers
            )
            _registry.async_lambda = AsyncLambda(REGION, QUEUE_TIME_SCALE)
            self._put_org_secrets()
            self._deploy()
            # GAP iam: from here on every call is authorised against the caller's IAM policies
            patches.enter_context(enable_iam_authentication())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._patches is not None:
            # Nothing new starts, running functions are killed (the account is going away), then the
            # deliveries, executions and pollers that were waiting on them end. Left running, their AWS
            # calls would go on after the mock is gone, to whatever credentials the environment holds.
            if _registry.async_lambda is not None:
                _registry.async_lambda.stop_accepting()
            if _registry.runtime is not None:
                _registry.runtime.close()
            if _registry.async_lambda is not None:
                _registry.async_lambda.close()
            with contextlib.suppress(Exception):
                self._stop_running_executions()
            for poller in getattr(self, "_pollers", []):
                poller.stopped.set()
                poller.join()
            self._patches.close()
            self._patches = None
        _cold_start()

    def _serve_aws(self) -> str:
        """GAP server: the local AWS on 127.0.0.1 over HTTP, for the functions' worker processes. It
        shares moto's state with this process's clients; the fault middleware sits in front of it."""
        app = _registry.faults.middleware(DomainDispatcherApplication(create_backend_app))
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietRequestHandler)
        thread = threading.Thread(target=server.serve_forever, name="local-aws", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            thread.join()
            server.server_close()

        self._patches.callback(stop)
        return f"http://127.0.0.1:{server.server_port}"

    def _local_environment(self) -> dict[str, str]:
        """What the local stack adds to every function's environment (never the template's)."""
        local = {"AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint_url, "POWERTOOLS_TRACE_DISABLED": "true"}
        if self.loopback_http:  # the harness's own switch (config.loopback_http), never the template's
            local[LOOPBACK_HTTP_VARIABLE] = "true"
        return local

    def _stop_running_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
            for execution in running["executions"]:
                _stop_execution(sfn, execution["executionArn"])

    def client(self, service: str):
        return boto3.client(service, region_name=REGION)

    # --- deployment -------------------------------------------------------------------------

    def _deploy(self) -> None:
        sam = template.load(self.template_path)
        self._package(sam)
        cfn = template.translate(sam, self.parameters)
        cfn_client = self.client("cloudformation")
        cfn_client.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(cfn),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn_client.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.stack_parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        summaries = cfn_client.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        self.resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        self._register_layers()
        self._attach_layers(cfn)
        _registry.async_lambda.function_dead_letters = self._function_dead_letters(cfn)
        self._take_over_queue_triggers()
        for logical_id, resource in cfn["Resources"].items():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                self._create_executable_state_machine(logical_id, resource["Properties"])

    def _package(self, sam: dict) -> None:
        """What `sam package` does: upload local code and definitions, point the template at S3."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        self._definitions: dict[str, Path] = {}
        self._layer_dirs: dict[str, Path] = {}
        for logical_id, resource, prop, path in template.local_artifacts(sam):
            key = path.relative_to(PROJECT_ROOT).as_posix()
            if path.is_dir():
                s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=_zip_dir(path))
                _registry.code_dirs[key] = path
            else:
                s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=path.read_bytes())
                self._definitions[logical_id] = path
            if resource["Type"] == "AWS::Serverless::LayerVersion":
                # Lambda imports a layer from its python/ folder. A makefile-built ContentUri holds that
                # folder; one built by a runtime BuildMethod is the folder's content itself.
                self._layer_dirs[logical_id] = path / "python" if (path / "python").is_dir() else path
            resource["Properties"][prop] = f"s3://{ARTIFACT_BUCKET}/{key}"

    def _register_layers(self) -> None:
        """Functions name their layers by ARN; map each deployed layer back to its source folder."""
        for layer in self.client("lambda").list_layers()["Layers"]:
            for source_id, folder in self._layer_dirs.items():
                if f"-{source_id}" in layer["LayerName"]:
                    _registry.code_dirs[f"layer:{layer['LayerName']}"] = folder

    def _attach_layers(self, cfn: dict) -> None:
        """GAP layer: moto gives a LayerVersion an empty physical id, so its functions lose their Layers.
        Attach the layers each function names in the template."""
        latest = {
            layer["LayerName"]: layer["LatestMatchingVersion"]["LayerVersionArn"]
            for layer in self.client("lambda").list_layers()["Layers"]
        }
        for logical_id, resource in cfn["Resources"].items():
            refs = resource.get("Properties", {}).get("Layers") if resource["Type"] == "AWS::Lambda::Function" else None
            if not refs or logical_id not in self.resources:  # no layers, or its Condition is false
                continue
            arns = [next(arn for name, arn in latest.items() if f"-{ref['Ref']}-" in name) for ref in refs]
            self.client("lambda").update_function_configuration(FunctionName=self.resources[logical_id], Layers=arns)

    def _function_dead_letters(self, cfn: dict) -> dict[str, str]:
        """GAP dlq: moto's Lambda keeps no DeadLetterConfig. Each deployed function's, from the template:
        function ARN -> queue ARN."""
        lam, sqs = self.client("lambda"), self.client("sqs")
        found = {}
        for logical_id, resource in cfn["Resources"].items():
            target = resource.get("Properties", {}).get("DeadLetterConfig", {}).get("TargetArn")
            if resource["Type"] != "AWS::Lambda::Function" or not target or logical_id not in self.resources:
                continue
            queue_arn = _queue_attribute(sqs, self.resources[target["Fn::GetAtt"][0]], "QueueArn")
            function_arn = lam.get_function(FunctionName=self.resources[logical_id])["Configuration"]["FunctionArn"]
            found[function_arn] = queue_arn
        return found

    def _take_over_queue_triggers(self) -> None:
        """GAP sqs: poll each SQS event source mapping here rather than in moto's send_message."""
        self._pollers: list[_QueuePoller] = []
        sqs = self.client("sqs")
        for mapping in self.client("lambda").list_event_source_mappings()["EventSourceMappings"]:
            queue_arn = mapping["EventSourceArn"]
            if ":sqs:" not in queue_arn:
                continue
            queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            queue = sqs_backends[ACCOUNT][REGION].queues[queue_arn.rsplit(":", 1)[-1]]
            queue.lambda_event_source_mappings.clear()
            visibility = int(_queue_attribute(sqs, queue_url, "VisibilityTimeout"))
            redelivery = max(1, math.ceil(visibility * QUEUE_TIME_SCALE))
            poller = _QueuePoller(
                queue_url, queue_arn, mapping["FunctionArn"], mapping.get("BatchSize", 10), redelivery
            )
            poller.start()
            self._pollers.append(poller)

    def _create_executable_state_machine(self, logical_id: str, props: dict) -> None:
        """GAP sfn: the same state machine, with the template's substitutions, in moto's interpreter."""
        arn = self.resources[logical_id]
        source_id = next(sid for sid in self._definitions if logical_id.startswith(sid))
        definition = self._definitions[source_id].read_text()
        for name, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", self._resolve(value))
        role_arn = self._resolve(props["RoleArn"])
        _registry.state_machine_role = role_arn
        self.client("stepfunctions").create_state_machine(
            name=arn.rsplit(":", 1)[-1], definition=definition, roleArn=role_arn, type="STANDARD"
        )
        self.definition = json.loads(definition)

    def _resolve(self, value: Any) -> str:
        """The few intrinsic functions the template's substitutions use: Ref and Fn::GetAtt."""
        if isinstance(value, str):
            return value
        if "Ref" in value:
            ref = value["Ref"]
            if ref in self.stack_parameters:
                return self.stack_parameters[ref]
            return self.resources[ref]
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            physical = self.resources[logical_id]
            if attribute == "Arn" and physical.startswith("arn:"):
                return physical
            if attribute == "Arn":
                kind = _ARN_LOOKUPS[logical_id_type(self, logical_id)]
                return kind(self, physical)
        raise ValueError(f"cannot resolve {value!r} locally")

    # --- using the stack ----------------------------------------------------------------------

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    @property
    def bucket(self) -> str:
        return self.outputs["ArchiveBucketName"]

    @property
    def bus_name(self) -> str:
        return self.outputs["EventBusName"]

    @property
    def lambda_invocations(self) -> list[LambdaInvocation]:
        return list(_registry.invocations)

    def metric_values(self, name: str, function: str = "", namespace: str | None = None) -> list[float]:
        """The values of the EMF metric ``name`` the functions logged, in order (those whose name holds
        ``function``; in ``namespace`` when given), as CloudWatch would read them from the log lines."""
        logs = [i.logs for i in self.lambda_invocations if function in i.function_name]
        return [value for text in logs for value in emf_values(text, name, namespace)]

    def metric_names(self, function: str = "") -> set[str]:
        """Every EMF metric name the functions (those whose name holds ``function``) published."""
        return {metric["Name"] for _, directive in self._emf(function) for metric in directive["Metrics"]}

    def _emf(self, function: str) -> Iterator[tuple[dict, dict]]:
        """(record, CloudWatchMetrics directive) of every EMF line in the functions' logs."""
        for invocation in self.lambda_invocations:
            if function in invocation.function_name:
                yield from emf_directives(invocation.logs)

    def warm(self, workers: Mapping[str, int]) -> None:
        """Start warm workers now (template logical id -> how many), as provisioned concurrency would, so
        the first invocations do not wait for cold starts (the demo's jobs last seconds)."""
        backend = lambda_backends[ACCOUNT][REGION]
        specs = [(_function_spec(backend.get_function(self.resources[i])), n) for i, n in workers.items()]
        with ThreadPoolExecutor(max_workers=len(specs) or 1) as starting:
            list(starting.map(lambda spec_count: _registry.runtime.warm(*spec_count), specs))

    @property
    def reuse_workers(self) -> bool:
        """False: every invocation runs in a new container (a cold start), none is reused warm."""
        return self._reuse_workers

    @reuse_workers.setter
    def reuse_workers(self, reuse: bool) -> None:
        self._reuse_workers = reuse
        if _registry.runtime is not None:
            _registry.runtime.set_reuse(reuse)

    @property
    def peak_invocations_in_flight(self) -> int:
        """The most function invocations that ran at once (each in its own worker process)."""
        return _registry.runtime.peak_in_flight if _registry.runtime is not None else 0

    def fail_lambda(
        self, logical_id: str, error_code: str = "TooManyRequestsException", status: int = 429, times: int = 1
    ):
        """Make the next ``times`` invocations of a template function meet a Lambda service error."""
        faults = _registry.service_faults.setdefault(self.resources[logical_id], [])
        faults.extend([(error_code, status)] * times)

    def fail_aws(self, service: str, operation: str, *, times: int = 1, error: str = "InternalError", response=None):
        """Make the next ``times`` calls of ``service.operation`` (botocore names, e.g. ``s3``,
        ``PutObject``) raise ``error``, or answer ``response`` instead (e.g. a PutEvents answer with
        FailedEntryCount > 0), whoever makes them."""
        _registry.faults.add(service, operation, response or error, times)

    def on_invocation(self, listener: Callable[[LambdaInvocation], None]) -> None:
        """Call ``listener`` after every in-process Lambda invocation (from moto's worker threads)."""
        _registry.listeners.append(listener)

    def _put_org_secrets(self) -> None:
        """Each further org's login in its own secret, named so that its last segment is the org's name."""
        secrets = self.client("secretsmanager")
        for org, login in self.orgs.items():
            created = secrets.create_secret(Name=f"{ORG_SECRET_PREFIX}{org}", SecretString=json.dumps(dict(login)))
            self.org_secret_arns[org] = created["ARN"]
        if self.org_secret_arns:
            self.parameters["IicsOrgSecretArns"] = ",".join(self.org_secret_arns.values())

    def put_iics_secret(self, username: str, password: str, login_url: str) -> None:
        self.client("secretsmanager").create_secret(
            Name=self.stack_parameters["IicsSecretName"],
            SecretString=json.dumps({"username": username, "password": password, "loginUrl": login_url}),
        )

    def submit(self, detail: Mapping[str, Any], detail_type: str = TRIGGER_DETAIL_TYPE) -> str:
        """Announce a job the way the upstream system does: an event on the bus (``deployed.put_trigger``),
        ``IICS Export Job Submitted`` unless ``detail_type`` says ``IICS Import Job Submitted``.
        Returns the event's id."""
        event_id = put_trigger(self.client("events"), self.bus_name, detail, detail_type)
        _registry.async_lambda.wait_for_first_attempts(event_id)
        return event_id

    def submit_event_again(self, event_id: str) -> None:
        """Deliver an event once more, with the same id, to the same targets: EventBridge is at-least-once."""
        for rule, event in list(_registry.delivered_events[event_id]):
            _send_to_all_targets(rule, event)
        _registry.async_lambda.wait_for_first_attempts(event_id)

    def clear_aws_faults(self) -> None:
        """Forget the AWS faults ``fail_aws`` set that have not struck yet: the service has recovered."""
        _registry.faults.clear()

    def start(self, execution_input: Any, name: str | None = None) -> str:
        """Start an execution directly, with a bare or event-shaped input."""
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or uuid.uuid4().hex,
            input=json.dumps(execution_input),
        )["executionArn"]

    def executions(self) -> list[dict]:
        """Every execution of the state machine (all pages: a chaos or scale run has hundreds)."""
        pages = self.client("stepfunctions").get_paginator("list_executions")
        return [e for page in pages.paginate(stateMachineArn=self.state_machine_arn) for e in page["executions"]]

    def wait(self, execution_arn: str, timeout: float = 60.0, poll_seconds: float = 0.05) -> dict:
        """Block until the execution ends; return describe_execution's answer."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in EXECUTION_ENDED:
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still {described['status']} after {timeout}s")
            time.sleep(poll_seconds)

    def history(self, execution_arn: str) -> list[dict]:
        sfn = self.client("stepfunctions")
        events, token = [], None
        while True:
            page = sfn.get_execution_history(executionArn=execution_arn, **({"nextToken": token} if token else {}))
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def path(self, execution_arn: str) -> list[str]:
        """The states the execution entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if "stateEnteredEventDetails" in e
        ]

    def capture_events(self, source: str = "iics.export.monitor") -> OutcomeCapture:
        """Route events of ``source`` on the bus to an SQS queue, as a consumer's rule would."""
        return OutcomeCapture(self, source)


def emf_directives(logs: str) -> Iterator[tuple[dict, dict]]:
    """(record, CloudWatchMetrics directive) of every EMF line (Powertools' metrics) in ``logs``."""
    for line in logs.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for directive in record["_aws"]["CloudWatchMetrics"]:
                yield record, directive


def emf_values(logs: str, name: str, namespace: str | None = None) -> list[float]:
    """The values of the EMF metric ``name`` in ``logs`` (in ``namespace`` when given), in order."""
    return [
        value
        for record, directive in emf_directives(logs)
        if namespace in (None, directive["Namespace"]) and name in {m["Name"] for m in directive["Metrics"]}
        for value in (record[name] if isinstance(record[name], list) else [record[name]])
    ]


class OutcomeCapture:
    """An EventBridge rule -> SQS queue, read back as a list of events."""

    def __init__(self, stack: LocalStack, source: str) -> None:
        self._sqs = stack.client("sqs")
        self.queue_url = self._sqs.create_queue(QueueName=f"capture-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = stack.client("events")
        rule = f"capture-{uuid.uuid4().hex[:8]}"
        events.put_rule(Name=rule, EventBusName=stack.bus_name, EventPattern=json.dumps({"source": [source]}))
        events.put_targets(Rule=rule, EventBusName=stack.bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
        self.events: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            messages = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.events
            for message in messages:
                self.events.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class TopicInbox:
    """An SQS queue subscribed to an SNS topic, read back as notifications (Subject, Message, ...),
    as an e-mail inbox would see them."""

    def __init__(self, stack: LocalStack, topic_arn: str) -> None:
        self._sqs = stack.client("sqs")
        self.url = self._sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def messages(self, expected: int = 1, timeout: float = 10.0) -> list[dict]:
        """What arrived, once ``expected`` notifications have or ``timeout`` passed (delivery is asynchronous)."""
        received: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            received += self._receive()
            time.sleep(0.02)
        return received + self._receive()

    def _receive(self) -> list[dict]:
        received = []
        while batch := self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                received.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return received


def logical_id_type(stack: LocalStack, logical_id: str) -> str:
    summaries = stack.client("cloudformation").list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    return next(r["ResourceType"] for r in summaries if r["LogicalResourceId"] == logical_id)


_ARN_LOOKUPS = {
    "AWS::Lambda::Function": lambda stack, name: stack.client("lambda").get_function(FunctionName=name)[
        "Configuration"
    ]["FunctionArn"],
    "AWS::IAM::Role": lambda stack, name: stack.client("iam").get_role(RoleName=name)["Role"]["Arn"],
    "AWS::Logs::LogGroup": lambda stack, name: f"arn:aws:logs:{REGION}:123456789012:log-group:{name}",
}


@contextlib.contextmanager
def _patched(owner: type, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _cold_start() -> None:
    """Forget the previous stack's workers, faults and records."""
    _registry.invocations.clear()
    _registry.service_faults.clear()
    _registry.listeners.clear()
    _registry.faults = Faults()
    _registry.delivered_events.clear()
    _registry.async_lambda = None
    _registry.runtime = None
    _registry.state_machine_role = None
    _role_sessions.clear()


@contextlib.contextmanager
def _environment(variables: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables while the stack runs. boto3's default session
    keeps the credentials it first found, so it is made again."""
    saved = {k: os.environ.get(k) for k in variables}
    _set_environment(variables)
    try:
        yield
    finally:
        _set_environment(saved)


def _set_environment(variables: Mapping[str, str | None]) -> None:
    for key, value in variables.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    boto3.DEFAULT_SESSION = None


# Deploying happens before IAM is enforced, with any key; then this process acts as ADMINISTRATOR.
_DEPLOYER = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
}


def _administrator() -> dict[str, str | None]:
    """An IAM user allowed everything, for this process's own clients: the tests, the command line, the
    local EventBridge and SQS deliveries. The functions and the state machine act as their roles."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName=ADMINISTRATOR)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=ADMINISTRATOR, PolicyName="everything", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName=ADMINISTRATOR)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def _role_credentials(role_arn: str, session_name: str) -> tuple[str, str, str]:
    """A role's temporary credentials, as the Lambda or Step Functions service gets them (the service
    principal assumes the role: no caller's permission is checked)."""
    role = sts_backends[ACCOUNT]["global"].assume_role(
        region_name=REGION,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=43_200,
        external_id="",
    )
    return role.access_key_id, role.secret_access_key, role.session_token


_role_sessions: dict[str, tuple[str, str, str]] = {}  # role ARN -> the state machine's credentials


def _state_machine_client(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    """GAP sfn-role: moto's interpreter calls services with a made-up key; these calls are made as the
    state machine's execution role, so IAM decides on them as in AWS."""
    role = _registry.state_machine_role
    if role not in _role_sessions:
        _role_sessions[role] = _role_credentials(role, "states")
    key, secret, token = _role_sessions[role]
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
    )


def _interpreter_modules() -> list[Any]:
    """moto's interpreter modules that call AWS (each imported boto_client_for by name)."""
    import importlib

    base = "moto.stepfunctions.parser.asl"
    names = [
        f"{base}.utils.boto_client",
        f"{base}.component.state.exec.state_task.lambda_eval_utils",
        f"{base}.component.state.exec.state_task.service.state_task_service_events",
        f"{base}.component.state.exec.state_task.service.state_task_service_sqs",
        f"{base}.component.state.exec.state_task.service.state_task_service_sns",
        f"{base}.component.state.exec.state_task.service.state_task_service_dynamodb",
        f"{base}.component.state.exec.state_task.service.state_task_service_aws_sdk",
    ]
    modules = []
    for name in names:
        with contextlib.suppress(ImportError):
            modules.append(importlib.import_module(name))
    return [m for m in modules if hasattr(m, "boto_client_for")]


def _request_as_signed(self: IAMRequestBase) -> AWSRequest:
    """GAP iam-signature: for a request without a body moto signs its parsed parameters (a form post's
    fields, but for a GET its headers), so every correctly signed GET failed with SignatureDoesNotMatch.
    A GET, HEAD or DELETE is signed with the body it was sent with: none."""
    signed_headers = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed_headers, self._headers)
    without_body = self._method in ("GET", "HEAD", "DELETE")
    body = self._body or (b"" if without_body else self._data)
    request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


# GAP ddb-atomic: moto's DynamoDB reads, changes and writes an item without a lock. With functions in
# parallel processes, two conditional UpdateItem ADDs lost one count (the request budget counted 29 of
# 30 requests). DynamoDB applies each write atomically: so does the local stack, one write at a time.
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()


def _atomic(write: Callable) -> Callable:
    def atomic_write(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return write(*args, **kwargs)

    return atomic_write


def _access_denied_as_the_service_says(self: IAMRequest) -> None:
    """GAP iam-error: moto answers every refusal as query-protocol XML, which a JSON service's client reads
    as error code "403". AWS's JSON services answer ``AccessDeniedException`` (SQS: ``AccessDenied``)."""
    message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
    if protocol_of(self._service) in ("json", "rest-json"):
        raise JsonRESTError("AccessDenied" if self._service == "sqs" else "AccessDeniedException", message)
    raise AccessDeniedError(user_arn=self._access_key.arn, action=self._action)


# GAP iam-action: moto names the action after the API operation; IAM's name differs for these.
_IAM_ACTIONS = {"lambda:invoke": "lambda:InvokeFunction"}

_original_policy_init = IAMPolicy.__init__


def _policy_from_document(self: IAMPolicy, policy: Any) -> None:
    """GAP iam-cfn: moto's CloudFormation keeps a role's inline policy as a JSON object, which moto's
    enforcement cannot read (it expects text)."""
    if isinstance(policy, dict) and "policy_document" not in policy:
        policy = json.dumps(policy)
    _original_policy_init(self, policy)


def _statement_matches(self: IAMPolicyStatement, element: str, value: str) -> bool:
    """GAP iam-resource: moto knows the resource of a call only for S3, SQS, IAM and STS and passes "*"
    for the others, which no statement naming a resource would match. So for those only the action is
    checked. Patterns use IAM's wildcards (``*`` and ``?``); actions match case-insensitively."""
    patterns = self._statement[element]
    patterns = patterns if isinstance(patterns, list) else [patterns]
    if element in ("Resource", "NotResource") and value == "*":
        return True
    if element in ("Action", "NotAction"):
        value = _IAM_ACTIONS.get(value.lower(), value)
        return any(_iam_pattern(str(p).lower()).match(value.lower()) for p in patterns)
    return any(_iam_pattern(str(p)).match(value) for p in patterns)


@functools.cache
def _iam_pattern(pattern: str) -> re.Pattern:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one; everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")
