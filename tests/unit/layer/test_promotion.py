"""promotion: the request a promotion is, the step between its two jobs, and its one outcome."""

from __future__ import annotations

import io

import pytest

from iics_monitor.config import PromoteConfig
from iics_monitor.errors import BadRequest, IicsUnavailable, InvalidInput, StartUnconfirmed
from iics_monitor.promotion import promotion_outcome, start_import
from iics_monitor.submit import accept
from iics_monitor.validation import MonitorSettings, parse_promotion

SETTINGS = MonitorSettings(initial_wait_seconds=1, max_wait_seconds=60, timeout_seconds=600)
ORGS = {"dev": "arn:dev", "prod": "arn:prod"}
CONFIG = PromoteConfig(  # noqa: S106 - a name, not a secret
    secret_name="iics", bucket="archive", prefix="logs/", defaults=SETTINGS, org_secrets=ORGS
)
OBJECT = "aaaaaaaaaaaaaaaaaaaaa1"
PROMOTE = {"from": "dev", "to": "prod", "objects": [{"id": OBJECT}], "conflictResolution": "OVERWRITE"}


def request_of(**fields) -> dict:
    return parse_promotion({"promote": PROMOTE | fields}, SETTINGS, ORGS).to_dict()


# --- the request ---------------------------------------------------------------------------------


def test_a_promotion_is_a_start_export_in_its_source_org_carrying_the_promotion():
    request = request_of(name="release-42", includeObjects=[OBJECT])
    assert request["export"] == {"objects": [{"id": OBJECT}], "name": "release-42"}
    assert (request["kind"], request["org"]) == ("export", "dev")
    assert request["promotion"]["track"] == {"from": "dev", "to": "prod", "step": "export", "export": None}
    assert request["promotion"]["spec"]["includeObjects"] == [OBJECT]


def test_an_announced_promotion_gets_its_own_execution_name_from_its_event():
    from iics_monitor.submit import _execution_name
    from iics_monitor.validation import parse_announcement

    assert _execution_name(parse_announcement({"promote": PROMOTE}, SETTINGS, ORGS), "e1") == "promote-e1"


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"to": None}, "promote.to must name"),
        ({"to": "dev"}, "are the same org"),
        ({"to": "staging"}, "org staging is not configured"),
        ({"conflictResolution": "MERGE"}, "conflictResolution must be one of"),
        ({"allowUnverified": "yes"}, "allowUnverified must be true or false"),
        ({"includeObjects": ["../x"]}, r"includeObjects\[0\]"),
        ({"objects": []}, "export.objects must list"),
        ({"force": True}, "unknown fields"),
    ],
)
def test_a_bad_promotion_is_refused_at_the_door_naming_the_field(fields, says):
    with pytest.raises(InvalidInput, match=says):
        parse_promotion({"promote": PROMOTE | fields}, SETTINGS, ORGS)


def test_a_refused_promotion_is_told_as_one():
    refused = accept({"promote": PROMOTE | {"to": "staging"}}, SETTINGS, ORGS)["refused"]
    assert refused["promotion"] is True and "staging" in refused["reason"]


# --- the step between the jobs -------------------------------------------------------------------


class FakeS3:
    def __init__(self, body: bytes = b"PK-zip") -> None:
        self.body, self.read = body, []

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's names
        self.read.append((Bucket, Key))
        return {"Body": io.BytesIO(self.body), "ContentLength": len(self.body)}


class FakeOrg:
    def __init__(self, upload_error=None, start_error=None) -> None:
        self.upload_error, self.start_error, self.calls = upload_error, start_error, []

    def upload_package(self, stream, size, **kwargs):
        self.calls.append(("upload", stream.read(), size))
        if self.upload_error:
            raise self.upload_error
        return {"jobId": "Qm3vT8kXw2LpN5rYb7HcZd", "jobStatus": {"state": "NOT_STARTED"}, "checksumValid": True}

    def start_import(self, job_id, name, conflict, include=None):
        self.calls.append(("start", job_id, name, conflict, include))
        if self.start_error:
            raise self.start_error
        return {"id": job_id}


def export_outcome(**package) -> dict:
    archived = {
        "bucket": "archive",
        "key": "logs/org=dev/2026/11/28/J1/package.zip",
        "sizeBytes": 6,
        "sha256": "0" * 64,
    }
    return {
        "jobId": "k7A75aikpuMNj4otBBZWnz",
        "jobName": "release-42",
        "state": "SUCCESSFUL",
        "package": archived | package,
    }


def run_start(org: FakeOrg, export: dict, **fields) -> dict:
    request = request_of(**fields)
    request = {k: v for k, v in request.items() if k != "export"} | {"jobId": "k7A75aikpuMNj4otBBZWnz"}
    orgs_asked = []

    def source_for(name):
        orgs_asked.append(name)
        return org

    answer = start_import(
        {"startImport": {"request": request, "export": export}}, source_for=source_for, s3=FakeS3(), config=CONFIG
    )
    answer["orgsAsked"] = orgs_asked
    return answer


def test_a_verified_package_is_streamed_to_the_target_org_and_its_import_started():
    org = FakeOrg()
    answer = run_start(org, export_outcome(verified=True), includeObjects=[OBJECT], conflictResolution="REUSE")

    assert answer["outcome"] is None and answer["orgsAsked"] == ["prod"]
    assert org.calls[0] == ("upload", b"PK-zip", 6)
    assert org.calls[1] == ("start", "Qm3vT8kXw2LpN5rYb7HcZd", "release-42", "REUSE", (OBJECT,))
    request = answer["request"]
    assert (request["jobId"], request["kind"], request["org"]) == ("Qm3vT8kXw2LpN5rYb7HcZd", "import", "prod")
    track = request["promotion"]["track"]
    assert (track["step"], track["export"]["jobId"], track["export"]["package"]["verified"]) == (
        "import",
        "k7A75aikpuMNj4otBBZWnz",
        True,
    )


@pytest.mark.parametrize(
    "package, allow, says",
    [
        ({"verified": False}, False, "failed verification"),
        ({}, False, "could not be verified"),
        ({"verified": True, "truncated": "size"}, True, "cut short"),
        ({"verified": True, "key": "elsewhere/package.zip"}, False, "not in this stack's archive"),
    ],
)
def test_a_package_that_may_not_be_imported_stops_the_promotion_at_verify(package, allow, says):
    org = FakeOrg()
    answer = run_start(org, export_outcome(**package), allowUnverified=allow)
    assert (answer["step"], org.calls) == ("verify", [])
    assert says in answer["reason"]


def test_an_unverified_package_is_imported_when_the_request_allows_it():
    assert run_start(FakeOrg(), export_outcome(verified=False), allowUnverified=True)["outcome"] is None


@pytest.mark.parametrize(
    "org, step, state",
    [
        (FakeOrg(upload_error=BadRequest("Checksum validation failed for [x]", status=400)), "upload", "FAILED"),
        (FakeOrg(upload_error=IicsUnavailable("could not reach IICS")), "upload", "ERROR"),
        (FakeOrg(start_error=BadRequest("bad spec", status=400)), "start", "FAILED"),
        (FakeOrg(start_error=StartUnconfirmed("an import may have started")), "start", "ERROR"),
    ],
)
def test_a_refused_or_unconfirmed_step_says_which_and_how_sure(org, step, state):
    answer = run_start(org, export_outcome(verified=True))
    assert (answer["outcome"], answer["step"]) == (state, step)


# --- the outcome ---------------------------------------------------------------------------------


def poll(step: str, export=None) -> dict:
    return {"check": {"poll": {"promotion": {"from": "dev", "to": "prod", "step": step, "export": export}}}}


def outcome_of(state: dict) -> dict:
    return promotion_outcome({"state": state, "executionArn": "arn:x", "executionName": "promote-e1"})


def test_an_import_that_succeeded_is_a_successful_promotion_naming_both_jobs():
    export = {"jobId": "E1", "state": "SUCCESSFUL"}
    detail = outcome_of(poll("import", export) | {"outcome": {"detail": {"jobId": "I1", "state": "SUCCESSFUL"}}})
    assert (detail["state"], detail["failedStep"], detail["export"], detail["import"]["jobId"]) == (
        "SUCCESSFUL",
        None,
        export,
        "I1",
    )
    assert (detail["promotionId"], detail["from"], detail["to"]) == ("promote-e1", "dev", "prod")


@pytest.mark.parametrize(
    "state, expected",
    [
        (
            poll("import", {"jobId": "E1"}) | {"outcome": {"detail": {"jobId": "I1", "state": "FAILED"}}},
            ("FAILED", "import"),
        ),
        (
            poll("import", {"jobId": "E1"}) | {"outcome": {"detail": {"jobId": "I1", "state": "ERROR"}}},
            ("ERROR", "import"),
        ),
        (poll("export") | {"outcome": {"detail": {"jobId": "E1", "state": "TIMED_OUT"}}}, ("FAILED", "export")),
        (
            poll("export")
            | {"outcome": {"detail": {"jobId": "E1", "state": "SUCCESSFUL"}}}
            | {"start": {"started": {"outcome": "FAILED", "step": "verify", "reason": "failed verification"}}},
            ("FAILED", "verify"),
        ),
        (
            poll("export") | {"outcome": {"detail": {"state": "SUCCESSFUL"}}} | {"error": {"Error": "Lambda.Unknown"}},
            ("ERROR", "upload"),
        ),
        ({"refused": {"reason": "org staging is not configured"}}, ("ERROR", "request")),
    ],
)
def test_every_end_of_a_promotion_says_its_state_and_the_step_that_failed(state, expected):
    detail = outcome_of(state)
    assert (detail["state"], detail["failedStep"]) == expected
    assert detail["reason"]


class Zeros:
    """A package body of ``size`` bytes made as it is read, like an S3 StreamingBody."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)

    def close(self) -> None:
        pass


def test_the_package_goes_from_s3_to_the_target_org_in_bounded_memory():
    import tracemalloc

    size = 64 * 1024 * 1024

    class BigS3(FakeS3):
        def get_object(self, Bucket, Key):  # noqa: N803
            return {"Body": Zeros(size), "ContentLength": size}

    class StreamingOrg(FakeOrg):
        def upload_package(self, stream, size, **kwargs):  # as IicsClient.upload_package reads: 64 KiB at a time
            sent = 0
            while chunk := stream.read(64 * 1024):
                sent += len(chunk)
            self.calls.append(("upload", sent))
            return {"jobId": "Qm3vT8kXw2LpN5rYb7HcZd"}

    org = StreamingOrg()
    request = {k: v for k, v in request_of().items() if k != "export"} | {"jobId": "k7A75aikpuMNj4otBBZWnz"}
    tracemalloc.start()
    try:
        answer = start_import(
            {"startImport": {"request": request, "export": export_outcome(verified=True, sizeBytes=size)}},
            source_for=lambda _: org,
            s3=BigS3(),
            config=CONFIG,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer["outcome"] is None and org.calls[0] == ("upload", size)
    assert peak < 2 * 1024 * 1024  # 64 MiB went through; the function never held it


def test_an_object_that_is_not_the_archived_package_is_not_uploaded():
    org = FakeOrg()
    answer = run_start(org, export_outcome(verified=True, sizeBytes=7))  # S3 holds 6 bytes
    assert (answer["step"], org.calls) == ("verify", [])
    assert "not the 7 archived" in answer["reason"]


def test_a_package_allowed_in_unverified_is_uploaded_with_relax_checksum():
    seen = {}

    class Recording(FakeOrg):
        def upload_package(self, stream, size, **kwargs):
            seen.update(kwargs)
            return super().upload_package(stream, size, **kwargs)

    run_start(Recording(), export_outcome(verified=False), allowUnverified=True)
    assert seen == {"relax_checksum": True}
    run_start(Recording(), export_outcome(verified=True), allowUnverified=True)
    assert seen == {"relax_checksum": False}  # a verified package needs no relaxing


def test_a_throttled_upload_is_tried_again_because_nothing_was_sent(monkeypatch):
    from iics_monitor import promotion
    from iics_monitor.errors import Throttled

    monkeypatch.setattr(promotion.time, "sleep", lambda _: None)

    class ThrottledOnce(FakeOrg):
        tries = 0

        def upload_package(self, stream, size, **kwargs):
            ThrottledOnce.tries += 1
            if ThrottledOnce.tries == 1:
                raise Throttled("the stack's budget is used up", retry_after=1)
            return super().upload_package(stream, size, **kwargs)

    org = ThrottledOnce()
    assert run_start(org, export_outcome(verified=True))["outcome"] is None
    assert ThrottledOnce.tries == 2
