"""OpenAPI 3.1 document of the serving API, generated from the data and output contracts.

One definition drives the server's validation, this document and the bundle's docs: the record
schema below is derived from the same ``data_contract`` the validator compiles.
"""

from __future__ import annotations

from typing import Any

from mlhandoff.contract.types import json_schema, v2_datatype
from mlhandoff.http_codes import ERROR_CODES, all_codes
from mlhandoff.spec.models import FieldSpec, HandoffSpec, OutputContract, OutputField


def field_schema(field: FieldSpec | OutputField) -> dict[str, Any]:
    """JSON Schema of one field, saying what the validator enforces (no more, no less)."""
    schema = json_schema(field)
    _bounds(schema["items"] if field.type == "array" else schema, field)
    domain = getattr(field, "domain", None)
    if (
        domain
        and field.type in ("category", "string")
        and getattr(field, "unseen", "reject") == "reject"
    ):
        schema["enum"] = [str(v) for v in domain]
    for key, attr in (
        ("pattern", "pattern"),
        ("minLength", "min_length"),
        ("maxLength", "max_length"),
    ):
        if getattr(field, attr, None) is not None:
            schema[key] = getattr(field, attr)
    if field.description:
        schema["description"] = field.description
    if getattr(field, "nullable", False):
        schema["type"] = [schema["type"], "null"]
    return schema


def _bounds(schema: dict[str, Any], field: FieldSpec | OutputField) -> None:
    for bound, exclusive, inclusive_key, exclusive_key in (
        (field.min, getattr(field, "min_exclusive", False), "minimum", "exclusiveMinimum"),
        (field.max, getattr(field, "max_exclusive", False), "maximum", "exclusiveMaximum"),
    ):
        if bound is not None:
            schema[exclusive_key if exclusive else inclusive_key] = bound


def record_schema(spec: HandoffSpec) -> dict[str, Any]:
    fields = spec.data_contract.fields
    return {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in fields.items()},
        "required": [name for name, f in fields.items() if not f.nullable],
        "additionalProperties": False,
    }


def prediction_schema(spec: HandoffSpec, contract: OutputContract | None = None) -> dict[str, Any]:
    outputs = (contract or spec.outputs()).fields
    properties = {name: field_schema(f) for name, f in outputs.items()}
    if spec.api.abstain_below is not None:
        properties["abstain"] = {
            "type": "boolean",
            "description": "Confidence below api.abstain_below.",
        }
        if "label" in properties:  # an abstained prediction has no label
            properties["label"]["type"] = [properties["label"]["type"], "null"]
    return {"type": "object", "properties": properties, "required": list(outputs)}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {"type": "string", "enum": all_codes()},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                    "violations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "rule": {"type": "string"},
                                "message": {"type": "string"},
                                "count": {"type": "integer"},
                                "rows": {"type": "array", "items": {"type": "integer"}},
                            },
                        },
                    },
                },
            }
        },
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {
            "description": f"`{ERROR_CODES[s][0]}`: {ERROR_CODES[s][1]}",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _one_key(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: schema},
    }


def _records(spec: HandoffSpec) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": spec.api.max_batch_size,
        "items": {"$ref": "#/components/schemas/Record"},
    }


def _mlflow_body(spec: HandoffSpec) -> dict[str, Any]:
    """What ``/invocations`` accepts, no more: a schema-valid body is never refused. JSON Schema
    cannot say that columns share one length, so the columnar ``inputs`` form and
    ``dataframe_split`` in other column orders are accepted but described in words only."""
    fields = spec.data_contract.fields
    names = list(fields)
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "additionalProperties": False,
        "description": "pandas' orient='split': these columns in this order (the server also "
        "takes any order and leaves out nullable columns); each row has one value per column.",
        "properties": {
            "columns": {"const": names},
            "index": {"type": "array"},
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": spec.api.max_batch_size,
                "items": {
                    "type": "array",
                    "prefixItems": [field_schema(f) for f in fields.values()],
                    "minItems": len(names),
                    "maxItems": len(names),
                },
            },
        },
    }
    records = _records(spec)
    inputs = {
        **records,
        "description": "Records; the server also takes a mapping of each column to an array of "
        "values, all arrays of one length (MLflow's columnar form).",
    }
    return {
        "oneOf": [
            _one_key("dataframe_split", split),
            _one_key("dataframe_records", records),
            _one_key("instances", records),
            _one_key("inputs", inputs),
        ]
    }


def _v2_request(spec: HandoffSpec) -> dict[str, Any]:
    """One named tensor per contract field, in contract order, one value each: what is always
    accepted (the server also takes other orders, leaves out nullable fields and batches of N
    values per tensor)."""
    tensors = [
        {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"const": name},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"const": v2_datatype(field)},
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": field_schema(field),
                },
            },
        }
        for name, field in spec.data_contract.fields.items()
    ]
    return {
        "type": "object",
        "required": ["inputs"],
        "description": "One tensor per input field, in the order of the data contract; the "
        "server also takes other orders, leaves out nullable fields and reads N values per "
        "tensor as a batch of N (all tensors the same N). `shape` and `datatype` are not "
        "checked: `data` is what is read.",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "prefixItems": tensors,
                "minItems": len(tensors),
                "maxItems": len(tensors),
            },
        },
    }


def openapi_document(spec: HandoffSpec, outputs: OutputContract | None = None) -> dict[str, Any]:
    """The whole OpenAPI document; ``outputs`` is the model's output contract (default: the spec's)."""
    examples = spec.api.examples
    request_errors = _errors(400, 401, 403, 409, 413, 415, 422, 429, 500, 503, 504)
    predict_body = {
        "oneOf": [
            {"$ref": "#/components/schemas/Record"},
            {
                "type": "object",
                "required": ["instances"],
                "additionalProperties": False,
                "properties": {"instances": _records(spec)},
            },
        ]
    }
    predict_examples = {}
    if examples:
        predict_examples["record"] = {"value": examples[0]}
        predict_examples["batch"] = {"value": {"instances": examples}}
    headers = {
        "parameters": [
            {
                "name": spec.api.request_id_header,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ]
    }
    ok_predict = {
        "description": "Predictions, one per record, in order.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
        },
    }
    health = {"200": {"description": "OK"}, "503": {"description": "Not ready"}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"const": spec.name}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{spec.name} prediction API",
            "version": spec.version,
            "description": (spec.purpose or "")
            + f"\n\nModel {spec.model.version_tag} ({spec.model.task.replace('_', ' ')}). "
            "Generated by mlhandoff from handoff.yaml.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict for one record or a batch under `instances`",
                    "operationId": "predict",
                    **headers,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": predict_body,
                                "examples": predict_examples,
                            }
                        },
                    },
                    "responses": {"200": ok_predict, **request_errors},
                }
            },
            "/invocations": {
                "post": {
                    "summary": "MLflow-compatible scoring (dataframe_split, dataframe_records, instances, inputs)",
                    "operationId": "invocations",
                    **headers,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _mlflow_body(spec)}},
                    },
                    "responses": {
                        "200": {
                            "description": "Predictions",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **request_errors,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "healthz",
                    "responses": {"200": {"description": "OK"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Model loaded and warmed",
                    "operationId": "readyz",
                    "responses": health,
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "OK"}},
                }
            },
            "/v2/health/live": {
                "get": {"operationId": "v2_live", "responses": {"200": {"description": "OK"}}}
            },
            "/v2/health/ready": {"get": {"operationId": "v2_ready", "responses": health}},
            "/v2/models/{name}": {
                "get": {
                    "summary": "Open Inference Protocol: model metadata",
                    "operationId": "v2_model",
                    "parameters": [name],
                    "responses": {"200": {"description": "Model metadata"}, **_errors(404)},
                }
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Open Inference Protocol: inference on named input tensors",
                    "operationId": "v2_infer",
                    "parameters": [name, *headers["parameters"]],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _v2_request(spec)}},
                    },
                    "responses": {
                        "200": {
                            "description": "Output tensors",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(404),
                        **request_errors,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Record": record_schema(spec),
                "Prediction": prediction_schema(spec, outputs),
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions", "model", "request_id"],
                    "properties": {
                        "predictions": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Prediction"},
                        },
                        "model": {"type": "object"},
                        "request_id": {"type": "string"},
                    },
                },
                "Error": _error_schema(),
            }
        },
    }
