"""The interactions-create contract, as JSON Schema.

`schema/interactions-create.openapi.yaml` is the project's copy of Corti's
OpenAPI document; the simulator and the tests validate bodies against it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker

CONTRACT_PATH = Path(__file__).parent / "schema" / "interactions-create.openapi.yaml"


@functools.cache
def openapi() -> dict[str, Any]:
    with CONTRACT_PATH.open(encoding="utf-8") as f:
        document: dict[str, Any] = yaml.safe_load(f)
    return document


def _to_json_schema(node: Any) -> Any:
    """Turn OpenAPI 3.0 schema objects into Draft 4 JSON Schema.

    OpenAPI's `nullable: true` becomes a null alternative; a `$ref` with
    siblings keeps only the `$ref`, as OpenAPI 3.0 says, but a `nullable`
    beside it is honoured: the contract uses it that way for `patient.gender`.
    """
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        out = {"$ref": node["$ref"]}
    else:
        out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _validator(schema_name: str) -> Draft4Validator:
    components = _to_json_schema(copy.deepcopy(openapi()["components"]))
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    return Draft4Validator(schema, format_checker=FormatChecker())


def validation_errors(body: Any, schema_name: str) -> list[tuple[str, str]]:
    """Return (JSON path, message) for each way `body` breaks the contract."""
    errors = []
    for error in sorted(
        _validator(schema_name).iter_errors(body), key=lambda e: list(e.path)
    ):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path.append(missing)
            message = "is required"
        elif error.validator == "anyOf" and error.context:
            # A nullable field: report why the non-null branch failed.
            message = _message(error.context[0])
        else:
            message = _message(error)
        errors.append((".".join(path) or "(body)", message))
    return errors


def _message(error: Any) -> str:
    if error.validator == "enum":
        return "must be one of: " + ", ".join(str(v) for v in error.validator_value)
    if error.validator == "format":
        return f"must be a valid {error.validator_value}"
    if error.validator == "type":
        return f"must be of type {error.validator_value}"
    return str(error.message)


def validate_create_request(body: Any) -> list[tuple[str, str]]:
    return validation_errors(body, "InteractionsCreateRequest")


#: The update (PATCH) body, as Corti's API reference and official SDK give it
#: (its `InteractionsUpdateRequest`): every field optional, except that a
#: period still needs its start and a patient its identifier; unknown fields
#: are refused, as Corti refuses them.
_UPDATE_SCHEMAS = {
    "InteractionsUpdateRequest": ("InteractionsCreateRequest", ()),
    "InteractionsEncounterUpdateRequest": ("InteractionsEncounterCreateRequest", ()),
    "InteractionsPatientUpdate": ("InteractionsPatient", ("identifier",)),
    "InteractionsEncounterPeriodUpdate": (
        "InteractionsEncounterPeriod",
        ("startedAt",),
    ),
}


@functools.cache
def _update_validator() -> Draft4Validator:
    components = _to_json_schema(copy.deepcopy(openapi()["components"]))
    schemas = components["schemas"]
    for name, (source, required) in _UPDATE_SCHEMAS.items():
        schema = copy.deepcopy(schemas[source])
        schema.pop("required", None)
        if required:
            schema["required"] = list(required)
        schema["additionalProperties"] = False
        schemas[name] = schema
    refs = {
        ("InteractionsUpdateRequest", "encounter"): (
            "InteractionsEncounterUpdateRequest"
        ),
        ("InteractionsUpdateRequest", "patient"): "InteractionsPatientUpdate",
        ("InteractionsEncounterUpdateRequest", "period"): (
            "InteractionsEncounterPeriodUpdate"
        ),
    }
    for (owner, prop), target in refs.items():
        schemas[owner]["properties"][prop] = {"$ref": f"#/components/schemas/{target}"}
    schema = {
        "$ref": "#/components/schemas/InteractionsUpdateRequest",
        "components": components,
    }
    return Draft4Validator(schema, format_checker=FormatChecker())


def validate_update_request(body: Any) -> list[tuple[str, str]]:
    """(JSON path, message) for each way a PATCH body breaks the API's rules."""
    errors = []
    for error in sorted(
        _update_validator().iter_errors(body), key=lambda e: list(e.path)
    ):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            path.append(error.message.split("'")[1] if "'" in error.message else "")
            message = "is required"
        elif error.validator == "additionalProperties":
            unknown = sorted(
                set(error.instance) - set(error.schema.get("properties", {}))
            )
            for name in unknown:
                errors.append((".".join([*path, name]), "is not a known field"))
            continue
        elif error.validator == "anyOf" and error.context:
            message = _message(error.context[0])
        else:
            message = _message(error)
        errors.append((".".join(path) or "(body)", message))
    return errors
