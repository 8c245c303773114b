"""Problem details in every shape Corti answers with, and the typed errors."""

from __future__ import annotations

import json

import pytest

from intake.corti.errors import (
    CortiAPIError,
    CortiAuthError,
    CortiConnectionError,
    CortiDisconnectedError,
    CortiError,
    CortiForbiddenError,
    CortiNotFoundError,
    CortiRateLimitError,
    CortiResponseError,
    CortiServerError,
    CortiTimeoutError,
    CortiUnauthorizedError,
    CortiValidationError,
    Problem,
    api_error_for,
)

# What the simulator (like Corti's gateway) sends with an empty-body 401.
GATEWAY_WWW_AUTHENTICATE = (
    'Bearer error="invalid_token", error_description="The access token is '
    'missing, unknown or expired"'
)


def problem_from(status: int, body: object, headers: dict[str, str] | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Problem.from_response(status=status, body=raw, headers=headers or {})


def test_current_shape_is_read_with_validation_errors():
    problem = problem_from(
        400,
        {
            "requestid": "7d0c4e4a-1b7e-4d0e-9a63-2f4c1c0b7f11",
            "status": 400,
            "type": "https://api.corti.app/problems/bad-request",
            "detail": "The request body does not match the contract.",
            "validationErrors": [
                {"encounter.identifier": "is required"},
                {"patient.gender": "must be one of: male, female, unknown, other"},
            ],
        },
    )
    assert problem == Problem(
        status=400,
        type="https://api.corti.app/problems/bad-request",
        detail="The request body does not match the contract.",
        request_id="7d0c4e4a-1b7e-4d0e-9a63-2f4c1c0b7f11",
        validation_errors=(
            ("encounter.identifier", "is required"),
            ("patient.gender", "must be one of: male, female, unknown, other"),
        ),
    )
    assert problem.title == ""
    assert problem.instance == ""
    assert problem.summary == "The request body does not match the contract."


def test_older_shape_maps_details_title_and_instance():
    body = {
        "requestid": "req-older-1",
        "type": "https://api.corti.app/problems/not-found",
        "status": 404,
        "title": "Not Found",
        "details": "Interaction 42 does not exist.",
        "instance": "/v2/interactions/42",
    }
    problem = problem_from(404, body)
    assert problem == Problem(
        status=404,
        type="https://api.corti.app/problems/not-found",
        title="Not Found",
        detail="Interaction 42 does not exist.",
        instance="/v2/interactions/42",
        request_id="req-older-1",
    )
    assert problem.raw == body


def test_older_shape_without_details_falls_back_to_title_in_summary():
    problem = problem_from(403, {"requestid": "r", "status": 403, "title": "Nope"})
    assert problem.detail == ""
    assert problem.summary == "Nope"


def test_empty_401_takes_its_reason_from_www_authenticate():
    problem = problem_from(
        401,
        b"",
        {
            "WWW-Authenticate": 'Bearer error="invalid_token", '
            'error_description="Token expired"',
            "X-Request-Id": "req-401",
        },
    )
    assert problem == Problem(status=401, detail="Token expired", request_id="req-401")
    assert problem.raw is None


def test_empty_401_keeps_a_www_authenticate_reason_that_contains_a_comma():
    # The exact header the simulator sends: a quoted value may hold commas.
    problem = problem_from(401, b"", {"www-authenticate": GATEWAY_WWW_AUTHENTICATE})
    assert problem.detail == "The access token is missing, unknown or expired"


def test_www_authenticate_without_description_is_kept_whole():
    problem = problem_from(401, b"", {"WWW-Authenticate": 'Bearer realm="corti"'})
    assert problem.detail == 'Bearer realm="corti"'


def test_empty_401_without_any_header_summarises_as_http_status():
    problem = problem_from(401, b"")
    assert problem == Problem(status=401)
    assert problem.summary == "HTTP 401"


def test_json_body_without_detail_uses_www_authenticate_reason():
    problem = problem_from(
        401,
        {"requestid": "r-1", "status": 401},
        {"WWW-Authenticate": 'Bearer error_description="Signature invalid"'},
    )
    assert problem.detail == "Signature invalid"
    assert problem.request_id == "r-1"


def test_non_json_body_becomes_the_detail():
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    problem = problem_from(502, html, {"Content-Type": "text/html"})
    assert problem == Problem(
        status=502, detail="<html><body><h1>502 Bad Gateway</h1></body></html>"
    )
    assert problem.raw == "<html><body><h1>502 Bad Gateway</h1></body></html>"


def test_long_non_json_body_is_cut_to_500_characters_in_detail():
    problem = problem_from(500, b"x" * 5000)
    assert problem.detail == "x" * 500
    assert problem.raw == "x" * 2000


def test_json_that_is_not_an_object_is_treated_as_text():
    problem = problem_from(500, b'["boom"]')
    assert problem.detail == '["boom"]'
    assert problem.validation_errors == ()


def test_request_id_comes_from_x_request_id_when_body_has_none():
    problem = problem_from(
        500,
        {"status": 500, "type": "about:blank", "detail": "Internal error"},
        {"X-Request-Id": "hdr-123"},
    )
    assert problem.request_id == "hdr-123"


def test_request_id_comes_from_request_id_header_as_a_fallback():
    problem = problem_from(500, b"oops", {"Request-Id": "hdr-456"})
    assert problem.request_id == "hdr-456"


def test_request_id_in_body_wins_over_header():
    problem = problem_from(
        400, {"requestid": "body-1", "detail": "bad"}, {"X-Request-Id": "hdr-1"}
    )
    assert problem.request_id == "body-1"


def test_camel_case_request_id_in_body_is_read():
    problem = problem_from(400, {"requestId": "camel-1", "detail": "bad"})
    assert problem.request_id == "camel-1"


def test_http_status_wins_over_status_in_body():
    problem = problem_from(503, {"status": 200, "detail": "maintenance"})
    assert problem.status == 503
    assert problem.raw["status"] == 200


def test_structured_detail_is_kept_as_json_text():
    problem = problem_from(400, {"detail": {"field": "encounter", "why": "missing"}})
    assert problem.detail == '{"field": "encounter", "why": "missing"}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"encounter.type": "is required"}, (("encounter.type", "is required"),)),
        (
            [{"a": "one", "b": "two"}, {"c": "three"}],
            (("a", "one"), ("b", "two"), ("c", "three")),
        ),
        (["plain message"], (("", "plain message"),)),
        ("not a list", ()),
        (None, ()),
    ],
)
def test_validation_errors_are_read_in_each_shape(value, expected):
    problem = problem_from(400, {"detail": "bad", "validationErrors": value})
    assert problem.validation_errors == expected


def test_as_dict_is_json_ready_in_the_current_shape():
    problem = Problem(
        status=400,
        type="t",
        title="Bad",
        detail="d",
        instance="/i",
        request_id="r",
        validation_errors=(("encounter.status", "must be one of: planned"),),
    )
    assert json.loads(json.dumps(problem.as_dict())) == {
        "status": 400,
        "type": "t",
        "title": "Bad",
        "detail": "d",
        "instance": "/i",
        "requestid": "r",
        "validationErrors": [{"encounter.status": "must be one of: planned"}],
    }


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (400, CortiValidationError, "invalid"),
        (401, CortiUnauthorizedError, "unauthorized"),
        (403, CortiForbiddenError, "forbidden"),
        (404, CortiNotFoundError, "not_found"),
        (429, CortiRateLimitError, "rate_limited"),
        (500, CortiServerError, "server_error"),
        (502, CortiServerError, "server_error"),
        (503, CortiServerError, "server_error"),
        (504, CortiServerError, "server_error"),
        (599, CortiServerError, "server_error"),
        (409, CortiAPIError, "api_error"),
        (422, CortiAPIError, "api_error"),
    ],
)
def test_api_error_for_maps_each_status_to_its_class(status, error_class, code):
    problem = Problem(status=status, detail="why", request_id="req-9")
    error = api_error_for(problem, retry_after=3.0)
    assert type(error) is error_class
    assert error.code == code
    assert error.status == status
    assert error.request_id == "req-9"
    assert error.retry_after == 3.0
    assert error.problem is problem
    assert str(error) == f"Corti answered {status}: why"
    assert error.outcome_unknown is (status >= 500)


def test_api_error_message_falls_back_to_http_status():
    error = api_error_for(Problem(status=404))
    assert error.message == "Corti answered 404: HTTP 404"
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("error", "code", "outcome_unknown"),
    [
        (CortiConnectionError("x"), "unreachable", False),
        (CortiTimeoutError("x"), "timeout", True),
        (CortiDisconnectedError("x"), "disconnected", True),
        (CortiAuthError("x", status=401), "auth", False),
        (CortiResponseError("x", status=201), "bad_response", True),
        (CortiResponseError("x", status=400), "bad_response", False),
    ],
)
def test_transport_errors_say_whether_the_outcome_is_unknown(
    error, code, outcome_unknown
):
    assert isinstance(error, CortiError)
    assert error.code == code
    assert error.outcome_unknown is outcome_unknown
    assert error.message == "x"


def test_auth_and_response_errors_keep_status_and_request_id():
    auth = CortiAuthError("refused", status=401)
    response = CortiResponseError("garbled", status=201, request_id="req-5")
    assert (auth.status, str(auth)) == (401, "refused")
    assert (response.status, response.request_id) == (201, "req-5")
