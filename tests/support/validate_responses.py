"""Checks real answers against the server's own OpenAPI spec (JSON Schema 2020-12, with
the `jsonschema_rs` that schemathesis installs).

Usage: python validate_responses.py BASE_URL CASES_JSON, where CASES_JSON is a list of
[path pattern in the spec, concrete path to GET]. Prints each answer's status; exits 1 naming
every mismatch (a status the spec does not list, or a body its schema refuses).
"""

import json
import sys
import urllib.error
import urllib.request

from jsonschema_rs import Draft202012Validator  # what schemathesis itself validates with

base, cases = sys.argv[1], json.loads(sys.argv[2])
spec = json.load(urllib.request.urlopen(base + "/openapi.json"))
failures = []
for pattern, path in cases:
    try:
        with urllib.request.urlopen(base + path) as res:
            status, body = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    answer = spec["paths"][pattern]["get"]["responses"].get(str(status))
    if answer is None:
        failures.append(f"GET {path}: status {status} is not in the spec")
        continue
    schema = dict(answer["content"]["application/json"]["schema"])
    schema["components"] = spec["components"]
    errors = list(Draft202012Validator(schema).iter_errors(json.loads(body)))
    for e in errors[:5]:
        failures.append(f"GET {path} ({status}): {e.message} at {list(e.instance_path)}")
    print(f"GET {path}: {status}, {len(body)} bytes, {len(errors)} schema errors")
if failures:
    print("\n".join(failures))
    sys.exit(1)
