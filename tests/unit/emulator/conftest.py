"""An emulator with two orgs, and a raw HTTP caller that speaks for either of them (no monitor client:
these tests pin the wire format the client is built against)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

from iics_monitor_local.emulator import EmulatedOrg, IicsEmulator

# The export package captured from IICS in 2021 and published with an open-source IICS client.
REAL_PACKAGE = Path(__file__).resolve().parents[2] / "golden/real-export-package-2021.zip"

_http = urllib3.PoolManager(retries=False, timeout=10.0)


@dataclass
class Caller:
    """Raw v3 calls to the emulator as one org's user."""

    emu: IicsEmulator
    org: EmulatedOrg

    def login(self) -> dict:
        body = json.dumps({"username": self.org.username, "password": self.org.password}).encode()
        reply = _http.request("POST", f"{self.emu.url}/saas/public/core/v3/login", body=body)
        assert reply.status == 200, reply.data
        return reply.json()

    @property
    def session(self) -> dict[str, str]:
        if not hasattr(self, "_session"):
            self._session = {"INFA-SESSION-ID": self.login()["userInfo"]["sessionId"]}
        return self._session

    def url(self, path: str) -> str:
        return f"{self.emu.base_api_url}/public/core/v3/{path}"

    def get(self, path: str) -> urllib3.BaseHTTPResponse:
        return _http.request("GET", self.url(path), headers=self.session)

    def post(self, path: str, document: object) -> urllib3.BaseHTTPResponse:
        headers = self.session | {"Content-Type": "application/json"}
        return _http.request("POST", self.url(path), body=json.dumps(document).encode(), headers=headers)

    def upload(self, package: bytes, *, relax: bool = False, field: str = "package") -> urllib3.BaseHTTPResponse:
        query = "?relaxChecksum=true" if relax else ""
        fields = {field: ("package.zip", package, "application/zip")}
        return _http.request("POST", self.url(f"import/package{query}"), fields=fields, headers=self.session)

    def start(
        self, job_id: str, name: str = "deploy", resolution: str = "OVERWRITE", **spec
    ) -> urllib3.BaseHTTPResponse:
        body = {"name": name, "importSpecification": {"defaultConflictResolution": resolution, **spec}}
        return self.post(f"import/{job_id}", body)

    def state(self, kind: str, job_id: str) -> str:
        return self.get(f"{kind}/{job_id}").json()["status"]["state"]


@pytest.fixture
def emu():
    with IicsEmulator(username="alice", password="s3cret") as emulator:
        yield emulator


@pytest.fixture
def dev(emu) -> Caller:
    """The default org (the constructor's user)."""
    return Caller(emu, emu.org())


@pytest.fixture
def prod(emu) -> Caller:
    """A second org of the same pod."""
    return Caller(emu, emu.add_org("bob", "hunter2", "prod-org"))


def v3_error(reply: urllib3.BaseHTTPResponse, status: int) -> str:
    """The message of a v3 error answer with this status."""
    assert reply.status == status, (reply.status, reply.data[:300])
    return reply.json()["error"]["message"]
