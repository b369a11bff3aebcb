"""scrub: the one scrubber. Each kind of secret, each way an echo spells one, and the length bound."""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

import pytest

from iics_monitor.scrub import MARK, TEXT_LIMIT, forget, remember, scrub

# A password as hard to find as it gets: JSON, HTML and URL escaping each change it.
PASSWORD = 'Zq7Kx9Wv "quoted" back\\slash <b>&amp; 100%'
SESSION_ID = "Sess10nIdOfTwentyTwoCh"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInNpZCI6IngifQ.c2lnbmF0dXJlLXBhcnQ"
WEBHOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc"


@pytest.fixture(autouse=True)
def cold():
    """Forget what this file's own import of the module remembered (a local stack elsewhere in the run
    may have loaded the layer afresh, so the shared fixture's module may be another one)."""
    forget()
    yield
    forget()


def login_body(password: str = PASSWORD) -> str:
    return json.dumps({"username": "alice@example.com", "password": password})


def assert_clean(text: str, *secrets: str) -> None:
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"left in: {text!r}"


# --- what it removes ---------------------------------------------------------------------------------------------


def test_a_remembered_password_is_removed_wherever_it_stands():
    remember(PASSWORD)

    assert scrub(f"refused {PASSWORD} twice: {PASSWORD}") == f"refused {MARK} twice: {MARK}"


def test_a_remembered_session_id_is_removed():
    remember(SESSION_ID)

    assert scrub(f"INFA-SESSION-ID {SESSION_ID}") == f"INFA-SESSION-ID {MARK}"


def test_nothing_is_removed_before_it_is_remembered_unless_it_has_a_secrets_shape():
    assert scrub(f"status {SESSION_ID} ok") == f"status {SESSION_ID} ok"


@pytest.mark.parametrize(
    "text",
    [
        f"session {JWT} expired",
        f"cut off: {JWT[:60]}",  # a JWT cut short by a bound upstream: header, dot, part of the payload
        "x" * 20 + JWT + "y",
    ],
)
def test_a_jwt_is_removed_without_being_remembered(text):
    scrubbed = scrub(text)

    assert "eyJzdWIi" not in scrubbed and "c2lnbmF0dXJl" not in scrubbed and MARK in scrubbed


def test_a_jwt_of_16000_characters_goes_whole():
    jwt = JWT.split(".")[0] + "." + "e" * 15_000 + "." + "s" * 900

    assert scrub(f"a {jwt} b") == f"a {MARK} b"


def test_a_base64_word_without_a_dot_is_not_a_jwt():
    # an IICS job id may start with eyJ by chance; only a dotted token is a JWT
    assert scrub("job eyJabc123DEF456ghi789JK ended") == "job eyJabc123DEF456ghi789JK ended"


def test_a_slack_webhook_url_and_its_path_are_removed_without_being_remembered():
    scrubbed = scrub(f"posting to {WEBHOOK} failed; POST /services/T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc")

    assert_clean(scrubbed, "cccccccccccccccccccccccc", "hooks.slack.com/services/T0")


def test_a_remembered_webhook_url_and_path_of_any_shape_are_removed():
    url = "http://127.0.0.1:8080/hook/secret-token-value"
    remember(url, "/hook/secret-token-value")

    assert_clean(scrub(f"{url} and POST /hook/secret-token-value"), "secret-token-value")


def test_the_hint_that_names_the_webhook_form_is_left_alone():
    hint = "must be a Slack incoming-webhook URL (https://hooks.slack.com/services/...)"

    assert scrub(hint) == hint


@pytest.mark.parametrize(
    "echo, secret",
    [
        ('{"username": "a", "password": "an unknown one"}', "an unknown one"),
        ('{"password" : "with \\"quotes\\" in it"}', 'with \\"quotes\\" in it'),
        ('{\\"password\\": \\"inside a JSON string\\"}', "inside a JSON string"),
        ("INFA-SESSION-ID: unknownSessionValue1\nAccept: */*", "unknownSessionValue1"),
        ('{"INFA-SESSION-ID": "unknownSessionValue2"}', "unknownSessionValue2"),
        ("icSessionId=unknownSessionValue3&x=1", "unknownSessionValue3"),
        ("username=a&password=formPassword1&grant=x", "formPassword1"),
        ("{'password': 'reprPassword1'}", "reprPassword1"),
        ("Authorization: Bearer opaqueToken.value-1", "opaqueToken.value-1"),
    ],
)
def test_password_and_session_fields_are_emptied_even_when_their_values_are_unknown(echo, secret):
    assert_clean(scrub(echo), secret)


def test_prose_that_mentions_a_password_is_left_alone():
    text = "IICS login refused: Invalid username or password. | HTTP 400 | code IDS_085"

    assert scrub(text) == text


# --- how an echo spells the password -------------------------------------------------------------------------------


def test_the_password_is_found_raw_json_escaped_url_encoded_and_html_escaped():
    remember(PASSWORD)
    body = login_body()
    echoes = {
        "raw": f"body {PASSWORD}",
        "json body": body,
        "json in json": json.dumps({"error": {"message": f"could not process: {body}"}}),
        "url": f"password={quote(PASSWORD, safe='')}",
        "form": f"password={quote_plus(PASSWORD)}",
        "html": f"<pre>{html.escape(PASSWORD)}</pre>",
        "json in html": f"<title>400: {html.escape(body)}</title>",
        "repr": repr({"password": PASSWORD}),
    }
    for how, echo in echoes.items():
        scrubbed = scrub(echo)
        assert "Zq7Kx9Wv" not in scrubbed and "quoted" not in scrubbed, f"{how}: {scrubbed!r}"


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param("{&quot;password&quot;:&quot;Sup3r&#39;Secret=1/2&quot;}", id="spring-html"),
        pytest.param("<password>Sup3r&apos;Secret=1/2</password>", id="xml"),
        pytest.param('{"value":"Sup3r\'Secret=1\\/2"}', id="json-escaped-slash"),
        pytest.param('{"value":"Sup3r\\u0027Secret\\u003d1/2"}', id="gson"),
        pytest.param("value=Sup3r%27Secret%3d1%2f2", id="lower-case-percent"),
    ],
)
def test_the_password_is_found_as_servers_in_other_languages_escape_it(echo):
    remember("Sup3r'Secret=1/2")

    assert "Sup3r" not in scrub(echo)


def test_a_json_escape_is_never_left_half_replaced():
    # 'ab\' is a prefix of its own JSON spelling 'ab\\': replacing the short one first would leave a
    # stray backslash that escapes the closing quote of a log line
    remember("pass\\")
    line = json.dumps({"message": "pass\\ was refused"})

    scrubbed = scrub(line)

    assert json.loads(scrubbed) == {"message": f"{MARK} was refused"}


@pytest.mark.parametrize("format", ["json", "text", "html"])
def test_an_echoed_login_request_leaves_nothing_of_the_password(format):
    remember(PASSWORD)
    body = login_body()
    page = {
        "json": json.dumps({"error": {"code": "X", "message": f"bad request {body}", "details": {"body": body}}}),
        "text": f"400 Bad Request\n\nPOST /saas/public/core/v3/login HTTP/1.1\nAccept: */*\n\n{body}",
        "html": f"<html><head><title>400: {html.escape(body)}</title></head><body><pre>{html.escape(body)}</pre>",
    }[format]

    assert "Zq7Kx9Wv" not in scrub(page)


# --- registry ----------------------------------------------------------------------------------------------------


def test_values_too_short_to_be_secrets_are_not_remembered():
    remember("abc", "", None)

    assert scrub("abc abc") == "abc abc"


def test_the_registry_keeps_the_most_recently_used_values():
    remember(PASSWORD)
    for number in range(40):  # forty logins of a warm container, each a new session
        remember(PASSWORD, f"session-number-{number:04d}")

    scrubbed = scrub(f"{PASSWORD} session-number-0039 session-number-0000")

    assert scrubbed == f"{MARK} {MARK} session-number-0000"


def test_forget_empties_the_registry():
    remember(PASSWORD)
    forget()

    assert PASSWORD in scrub(PASSWORD)


# --- bounds --------------------------------------------------------------------------------------------------------


def test_text_is_bounded_after_scrubbing_so_a_cut_never_keeps_part_of_a_secret():
    remember(PASSWORD)
    text = "x" * 90 + PASSWORD + "y" * 100

    scrubbed = scrub(text, 100)

    assert scrubbed == "x" * 90 + MARK and len(scrubbed) == 100


def test_the_default_bound():
    assert len(scrub("z" * 5000)) == TEXT_LIMIT


def test_a_very_long_text_is_cut_before_scrubbing_without_keeping_a_secret_cut_in_two():
    remember("Vw8Lr2Pq-" * 10)  # 90 characters
    # remembered secrets that shrink the text, then one that the read window cuts in two
    many = ("Vw8Lr2Pq-" * 10 + " ") * 400
    text = many + "Vw8Lr2Pq-" * 10

    scrubbed = scrub(text, 50_000)

    assert "Vw8Lr2Pq-Vw8" not in scrubbed and scrubbed.startswith(MARK)


def test_anything_becomes_text():
    assert scrub(42) == "42" and scrub(ValueError("boom")) == "boom"
