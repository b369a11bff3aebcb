"""hosts: the client sends the password and the session id to Informatica's hosts only.

Deployed, a request goes over https, on port 443, to a host under informaticacloud.com or one the
IicsAllowedHosts Parameter lists; plain http only to this machine, and only when the local harness
says so. The policy is checked on its own, then through the client against the emulator on loopback
and against a scripted pool that records every URL the client asks for.
"""

from __future__ import annotations

import io
import json
import re

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from iics_monitor.client import IicsClient
from iics_monitor.credentials import Credentials
from iics_monitor.errors import ConfigError, IicsUnavailable
from iics_monitor.hosts import ALLOWED_HOSTS_PARAMETER, MAX_ALLOWED_HOSTS, HostPolicy, service_url_parts
from iics_monitor_local import template
from iics_monitor_local.emulator import API_PREFIX, REFERENCE_JOB_ID
from tests.conftest import EMULATOR_HOSTS, PASSWORD, ROOT, USERNAME

DEPLOYED = HostPolicy()

# --- the policy -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://dm-us.informaticacloud.com",
        "https://na1.dm-us.informaticacloud.com/saas",
        "https://usw5.dm-us.informaticacloud.com:443/saas",
        "https://dm1-apse.informaticacloud.com",
    ],
)
def test_informaticas_hosts_over_https_are_trusted_by_default(url):
    DEPLOYED.check(url)  # no error


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://evilinformaticacloud.com/saas", "evilinformaticacloud.com"),
        ("https://informaticacloud.com.evil.net/saas", "informaticacloud.com.evil.net"),
        ("https://informaticacloud.com/saas", "informaticacloud.com"),  # the bare domain is no pod
        ("https://na1.dm-us.informaticacloud.com.evil.net/saas", "na1.dm-us.informaticacloud.com.evil.net"),
        ("https://na1-informaticacloud.com/saas", "na1-informaticacloud.com"),
        ("https://evil.example/saas", "evil.example"),
        ("https://10.0.0.5/saas", "10.0.0.5"),
        ("https://169.254.169.254/latest", "169.254.169.254"),
        ("https://na1.dm-us.informaticacloud.com./saas", "na1.dm-us.informaticacloud.com."),
    ],
)
def test_any_other_host_is_refused_naming_it_and_the_parameter_to_set(url, named):
    with pytest.raises(ConfigError) as caught:
        DEPLOYED.check(url)

    assert f"refused IICS host {named}:" in str(caught.value)
    assert ALLOWED_HOSTS_PARAMETER in str(caught.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://na1.dm-us.informaticacloud.com/saas", "refused plain http to na1.dm-us.informaticacloud.com"),
        ("http://127.0.0.1:8080", "refused plain http to 127.0.0.1"),
        ("http://localhost:8080/saas", "refused plain http to localhost"),
        ("http://[::1]:8080", "refused plain http to ::1"),
        ("https://na1.dm-us.informaticacloud.com:8443/saas", "refused port 8443 of IICS host"),
        ("https://na1.dm-us.informaticacloud.com:80/saas", "refused port 80 of IICS host"),
        ("https://127.0.0.1:8443/saas", "refused port 8443 of IICS host 127.0.0.1"),
        ("https://localhost/saas", "refused IICS host localhost"),
    ],
)
def test_a_deployment_refuses_plain_http_loopback_and_other_ports(url, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        DEPLOYED.check(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:1/saas", "http://[::1]:9", "https://127.0.0.1:1"]
)
def test_the_local_harness_may_turn_on_loopback(url):
    EMULATOR_HOSTS.check(url)  # no error


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8080", "http://127.0.0.1.nip.io", "http://localhost.example.com", "http://127.1/saas"]
)
def test_loopback_means_this_machine_only(url):
    with pytest.raises(ConfigError, match="refused plain http"):
        EMULATOR_HOSTS.check(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:pw@na1.dm-us.informaticacloud.com",
        "https://evil.example@na1.dm-us.informaticacloud.com",
        "https://evil.example\\@na1.dm-us.informaticacloud.com",
        "https://na1.dm-us.informaticacloud.com:99999",
        "https://[evil]/saas",
        "https://na1.dm-us.informaticacloud.com /saas",
        "https://na1.dm-us.informaticacloud\u2024com",
        "ftp://na1.dm-us.informaticacloud.com",
        "na1.dm-us.informaticacloud.com",
        "https://",
    ],
)
def test_a_url_that_is_not_plainly_a_service_url_is_refused(url):
    with pytest.raises(ConfigError, match="not an http\\(s\\) URL with a host"):
        EMULATOR_HOSTS.check(url)


@pytest.mark.parametrize("suffix", ["?", "#", "?x=1", "#x", "/saas?", "/saas#"])
def test_a_service_url_has_no_query_or_fragment_since_paths_are_appended_to_it(suffix):
    assert service_url_parts("https://na1.dm-us.informaticacloud.com" + suffix) is None
    assert service_url_parts("https://na1.dm-us.informaticacloud.com/saas") is not None


def test_a_request_url_may_carry_a_query():
    DEPLOYED.check("https://na1.dm-us.informaticacloud.com/saas/public/core/v3/export/abc?expand=objects")


@pytest.mark.parametrize(
    ("allowed", "url", "trusted"),
    [
        ("pod.example.net", "https://pod.example.net/saas", True),
        ("pod.example.net", "https://x.pod.example.net/saas", False),
        ("pod.example.net", "https://evilpod.example.net/saas", False),
        ("*.pre.example.net", "https://na1.pre.example.net/saas", True),
        ("*.pre.example.net", "https://a.b.pre.example.net/saas", True),
        ("*.pre.example.net", "https://pre.example.net/saas", False),
        ("*.pre.example.net", "https://evilpre.example.net/saas", False),
        ("*.pre.example.net", "https://pre.example.net.evil.org/saas", False),
        ("a.example.net,*.b.example.org", "https://x.b.example.org", True),
        ("a.example.net,*.b.example.org", "https://a.example.net", True),
        ("a.example.net,*.b.example.org", "https://na1.dm-us.informaticacloud.com", True),  # Informatica's stay
        ("", "https://pod.example.net", False),
    ],
)
def test_iics_allowed_hosts_adds_exact_hosts_and_domains(allowed, url, trusted):
    policy = HostPolicy.parse(allowed)

    if trusted:
        policy.check(url)
    else:
        with pytest.raises(ConfigError, match="refused IICS host"):
            policy.check(url)


# IicsAllowedHosts: the template's AllowedPattern accepts exactly what the functions' configuration does.
TEMPLATE = template.load()
PATTERN = TEMPLATE["Parameters"][ALLOWED_HOSTS_PARAMETER]["AllowedPattern"]
ACCEPTED = ["", "pod.example.net", "*.pre.example.net", "a.example.net,*.b.example.org", "xn--bcher-kva.example"]
ACCEPTED += ["a-b.c-d.example", "1pod.example.net", "a" * 63 + ".example.net"]
REFUSED = ["*", "*.com", "com", "*.*.example.net", "pod.example.net,", ",pod.example.net", "pod.example.net, x.net"]
REFUSED += ["Pod.Example.Net", "10.0.0.1", "pod.example.net.", "-pod.example.net", "pod-.example.net", "pod..example"]
REFUSED += ["https://pod.example.net", "pod.example.net:443", "pod.example.net/saas", "a" * 64 + ".example.net"]
REFUSED += ["pod.example.123", "*pod.example.net", "pod.*.example.net", " pod.example.net"]


def accepted_by_the_functions(text: str) -> bool:
    try:
        HostPolicy.parse(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text", ACCEPTED)
def test_the_parameter_accepts_host_names_and_star_domains(text):
    assert re.fullmatch(PATTERN, text)
    assert accepted_by_the_functions(text)


@pytest.mark.parametrize("text", REFUSED)
def test_the_parameter_refuses_what_would_not_work_or_trusts_too_much(text):
    assert not re.fullmatch(PATTERN, text)
    assert not accepted_by_the_functions(text)


@settings(max_examples=400, derandomize=True, database=None)
@given(
    st.lists(
        st.text(alphabet="abz09-.*,AZ :/", max_size=24) | st.sampled_from(ACCEPTED + REFUSED), min_size=1, max_size=3
    ).map(",".join)
)
def test_the_parameters_pattern_and_the_functions_agree_on_any_text(text):
    assert bool(re.fullmatch(PATTERN, text)) is accepted_by_the_functions(text)


def test_the_parameter_has_a_length_limit_the_functions_share():
    parameter = TEMPLATE["Parameters"][ALLOWED_HOSTS_PARAMETER]
    assert parameter["MaxLength"] == MAX_ALLOWED_HOSTS
    assert parameter["Default"] == ""
    longest = ",".join(["a" * 60 + ".example.net"] * 14)
    assert len(longest) <= MAX_ALLOWED_HOSTS and accepted_by_the_functions(longest)
    assert not accepted_by_the_functions(longest + ",b.example.net" * 10)


def test_the_template_never_turns_on_plain_http():
    assert "ALLOW_LOOPBACK_HTTP" not in (ROOT / "template.yaml").read_text()


# --- the client keeps to the policy -----------------------------------------------------------------------------------


class ScriptedHttp:
    """A stand-in for urllib3.PoolManager that answers from a script and records every URL asked for."""

    def __init__(self, *answers: urllib3.HTTPResponse) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str, dict]] = []

    def request(self, method, url, **kwargs):
        self.asked.append((method, url, kwargs.get("headers") or {}))
        return self.answers.pop(0)


def answer(document) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=io.BytesIO(json.dumps(document).encode()), status=200, preload_content=False)


def login_answer(base_api_url: str) -> dict:
    return {"products": [{"baseApiUrl": base_api_url}], "userInfo": {"sessionId": "S3ss10n" * 3}}


def credentials(login_url: str) -> Credentials:
    return Credentials(username=USERNAME, password=PASSWORD, login_url=login_url)


def scripted_client(login_url: str, *answers, **kwargs) -> tuple[IicsClient, ScriptedHttp]:
    http = ScriptedHttp(*answers)
    return IicsClient(lambda: credentials(login_url), http=http, **kwargs), http


@pytest.mark.parametrize(
    "base_api_url",
    [
        "https://evilinformaticacloud.com/saas",
        "https://informaticacloud.com.evil.net/saas",
        "https://na1.dm-us.informaticacloud.com:8443/saas",
        "http://na1.dm-us.informaticacloud.com/saas",
        "http://127.0.0.1:9/saas",
    ],
)
def test_a_login_answer_pointing_elsewhere_gets_no_session_id_and_ends_the_job(base_api_url):
    client, http = scripted_client("https://dm-us.informaticacloud.com", answer(login_answer(base_api_url)))

    with pytest.raises(ConfigError) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert [url for _, url, _ in http.asked] == ["https://dm-us.informaticacloud.com/saas/public/core/v3/login"]
    host = base_api_url.split("/")[2].rsplit(":", 1)[0]
    assert host in str(caught.value)
    assert caught.value.transient is False  # a ConfigError: the job ends ERROR at once, no retry


@pytest.mark.parametrize(
    "login_url",
    ["https://dm-us.informaticacloud.com.evil.net", "https://login.example.com", "http://127.0.0.1:9"],
)
def test_a_login_url_elsewhere_gets_no_password(login_url):
    client, http = scripted_client(login_url)

    with pytest.raises(ConfigError, match="refused"):
        client.get_status(REFERENCE_JOB_ID)

    assert http.asked == []


def test_a_host_listed_in_iics_allowed_hosts_is_followed():
    base = "https://na1.pre.example.net/saas"
    client, http = scripted_client(
        "https://login.pre.example.net",
        answer(login_answer(base)),
        answer({"id": REFERENCE_JOB_ID, "status": {"state": "IN_PROGRESS"}}),
        hosts=HostPolicy.parse("login.pre.example.net,*.pre.example.net"),
    )

    client.get_status(REFERENCE_JOB_ID)

    assert [url for _, url, _ in http.asked] == [
        "https://login.pre.example.net/saas/public/core/v3/login",
        f"{base}/public/core/v3/export/{REFERENCE_JOB_ID}",
    ]


def test_a_login_answer_that_is_no_url_at_all_stays_a_garbled_answer():
    client, http = scripted_client("https://dm-us.informaticacloud.com", answer(login_answer("not a url")))

    with pytest.raises(IicsUnavailable, match="unusable baseApiUrl"):
        client.get_status(REFERENCE_JOB_ID)


def test_a_client_built_without_a_policy_does_not_reach_the_emulator(emulator):
    emulator.add_reference_job()
    client = IicsClient(lambda: credentials(emulator.url))

    with pytest.raises(ConfigError, match=r"refused plain http to 127\.0\.0\.1"):
        client.get_status(REFERENCE_JOB_ID)

    assert emulator.requests == []


def test_with_loopback_turned_on_the_client_reaches_the_emulator(emulator):
    emulator.add_reference_job()
    client = IicsClient(lambda: credentials(emulator.url), hosts=EMULATOR_HOSTS)

    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert [r.path for r in emulator.requests][1] == f"{API_PREFIX}/public/core/v3/export/{REFERENCE_JOB_ID}"
