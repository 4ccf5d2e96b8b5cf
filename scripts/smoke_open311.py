"""The gateway's /openapi.json passes a real OpenAPI 3.1 validator (PyPI openapi-spec-validator);
a published Open311 client library (PyPI `georeport`) reads the running all-in-one's Open311
GeoReport v2 server, in JSON and in XML, and every JSON answer is validated against the
GeoReport v2 JSON Schemas in tests/fixtures/open311/. A report is posted with an API key the
demo commune's administrator issues through the gateway.

Usage: python scripts/smoke_open311.py <gateway base URL, e.g. http://127.0.0.1:8080>
"""

import json
import pathlib
import sys
import time

import jsonschema
import requests
from georeport import GeoReport
from openapi_spec_validator import validate as validate_openapi

base = sys.argv[1].rstrip("/")
open311 = f"{base}/open311/v2"
schemas = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "open311"


def valid(name, document):
    schema = json.loads((schemas / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, f"{name}: {[e.message for e in errors]} in {document}"
    return document


def as_list(value):
    return value if isinstance(value, list) else [value]


# The gateway's OpenAPI document is valid OpenAPI 3.1 for a real validator.
document = requests.get(f"{base}/openapi.json", timeout=10).json()
assert document["openapi"].startswith("3.1"), document["openapi"]
validate_openapi(document)
print("openapi: valid,", len(document["paths"]), "paths")

# The demo commune's administrator issues an API key for this client.
admin = requests.post(
    f"{base}/v1/sessions",
    json={"email": "admin@demo.jamaa.local", "password": "demo-admin-change-me"},
    timeout=10,
).json()["accessToken"]
issued = requests.post(
    f"{base}/v1/api-keys",
    json={"clientName": "Open311 smoke"},
    headers={"authorization": f"Bearer {admin}"},
    timeout=10,
)
assert issued.status_code == 200, issued.text
api_key = issued.json()["secret"]

client = GeoReport(open311, jurisdiction="DEMO", api_key=api_key)
xml_client = GeoReport(open311, jurisdiction="DEMO", api_key=api_key, output_format="xml")

valid("discovery", requests.get(f"{open311}/discovery.json", timeout=10).json())
deadline = time.time() + 60
while True:
    services = valid("services", client.get_service_list())
    if services:
        break
    assert time.time() < deadline, "the demo catalogue stayed empty"
    time.sleep(0.2)
code = services[0]["service_code"]
xml_services = as_list(xml_client.get_service_list())
assert any(service["service_code"] == code for service in xml_services), xml_services
valid("service_definition", client.get_service_definition(code))
assert xml_client.get_service_definition(code)["service_code"] == code

posted = requests.post(
    f"{open311}/requests.json",
    data={
        "api_key": api_key,
        "jurisdiction_id": "DEMO",
        "service_code": code,
        "lat": "33.99",
        "long": "-6.85",
        "description": "Reported through a third-party Open311 client",
        "first_name": "Open",
        "last_name": "Smoke",
        "phone": "+212600000002",
    },
    timeout=10,
)
assert posted.status_code == 200, posted.text
request_id = valid("post_request", posted.json())[0]["service_request_id"]

listed = valid("requests", client.get_service_requests(service_request_id=request_id))
assert [r["service_request_id"] for r in listed] == [request_id], listed
one = client.get_service_request(request_id)
valid("requests", [one])
assert one["status"] == "open" and one["service_code"] == code, one
xml_one = xml_client.get_service_request(request_id)
assert xml_one["service_request_id"] == request_id, xml_one
valid("requests", client.get_service_requests(status="open"))

missing = requests.get(f"{open311}/services.json", timeout=10)
assert missing.status_code == 400
valid("errors", missing.json())
refused = requests.post(
    f"{open311}/requests.json",
    data={"api_key": "jk_wrong", "jurisdiction_id": "DEMO", "service_code": code},
    timeout=10,
)
assert refused.status_code in (400, 403), refused.text
valid("errors", refused.json())
print("open311: the georeport client read", len(services), "service(s) and the posted request")
