#!/usr/bin/env python3
"""gen_collections.py: the Insomnia export (v4) and the Postman collection (v2.1, with an
environment) of fetchd's API, generated from its OpenAPI document, so that no copy is kept by
hand. `make docs` runs it; tests/integration/test_packaging.py fails when clients/ is stale or
misses a route.

    scripts/gen_collections.py --binary build/fetchd   # starts it on a scratch database
    scripts/gen_collections.py --spec openapi.json      # or a saved document
    scripts/gen_collections.py --url http://127.0.0.1:8000

What the generated files hold, for every operation of the document (except the Swagger UI's
own files under /swagger-ui/, which only a browser wants):
- one request per operation, in one folder per tag, named by its summary;
- the variables base_url, token, username, password and one per path parameter (task_id,
  job_id); a path parameter or a body property named like a variable refers to it;
- bearer authentication with {{token}} on every operation the document secures;
- a JSON body built from the request schema's examples (else its properties' examples and
  defaults), query parameters present but disabled;
- chaining: the response of the operation returning `access_token` (POST /login) sets token —
  Postman through a test script, Insomnia through a response tag in the environment, which
  logs in by itself when no login response is there yet; Postman also sets `<name>_id` from
  the `id` of a 201 whose path has a `/{<name>_id}` child (POST /tasks sets task_id).
Python 3 standard library only.
"""
import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "clients"
INSOMNIA_FILE = "fetchd.insomnia.json"
POSTMAN_FILE = "fetchd.postman_collection.json"
POSTMAN_ENV_FILE = "fetchd.postman_environment.json"

# Served for a browser (the Swagger UI page loads them), not worth a request of their own.
SKIPPED_PREFIXES = ("/swagger-ui/",)
METHOD_ORDER = ["post", "get", "put", "patch", "delete", "head", "options"]
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# Insomnia imports need a date; a fixed one keeps the file reproducible.
EXPORT_DATE = "2024-01-01T00:00:00.000Z"
NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4f57-9a43-5b0c2f6d7e10")  # stable ids for Postman

# The variables of both environments, with their starting values (path parameters are added).
BASE_VARIABLES = {
    "base_url": "http://127.0.0.1:8000",
    "username": "ada",
    "password": "correct horse battery",
    "token": "",
}
TOKEN_FIELD = "access_token"
LISTENING_RE = re.compile(r"listening on http://([0-9A-Za-z.\-\[\]:]+?):(\d+)")


# ---- reading the OpenAPI document

def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"external $ref not supported: {ref}"
        target = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def routes(spec):
    """Every (method, path) of the document that the collections must hold."""
    out = []
    for path, item in spec["paths"].items():
        if path.startswith(SKIPPED_PREFIXES):
            continue
        for method in item:
            if method in METHOD_ORDER:
                out.append((method.upper(), path))
    return out


def operations(spec):
    """[(tag, [(method, path, operation, parameters)])] in the document's tag order; within a
    tag by path, then POST, GET, PUT, PATCH, DELETE."""
    by_tag = {}
    for path, item in spec["paths"].items():
        if path.startswith(SKIPPED_PREFIXES):
            continue
        shared = item.get("parameters", [])
        for method in item:
            if method not in METHOD_ORDER:
                continue
            op = item[method]
            params = [resolve(spec, p) for p in shared + op.get("parameters", [])]
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, op, params))
    order = [t["name"] for t in spec.get("tags", [])]
    tags = sorted(by_tag, key=lambda t: (order.index(t) if t in order else len(order), t))
    return [(tag, sorted(by_tag[tag], key=lambda o: (o[1], METHOD_ORDER.index(o[0].lower()))))
            for tag in tags]


def path_parameters(spec):
    names = []
    for path in spec["paths"]:
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in names:
                names.append(name)
    return names


def variables(spec):
    out = dict(BASE_VARIABLES)
    for name in path_parameters(spec):
        out.setdefault(name, "1")
    return out


def example(spec, schema, ref_var, names, depth=0):
    """A value for `schema`: its examples, else one built from its properties."""
    schema = resolve(spec, schema or {})
    for key in ("examples", "example"):
        if key in schema:
            return schema[key][0] if key == "examples" else schema[key]
    if depth > 8:
        return None
    for key in ("oneOf", "anyOf", "allOf"):
        if schema.get(key):
            return example(spec, schema[key][0], ref_var, names, depth + 1)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        out = {}
        for name, prop in schema.get("properties", {}).items():
            prop = resolve(spec, prop)
            if name in names:
                out[name] = ref_var(name)
            elif name in required or any(k in prop for k in ("examples", "example", "default")):
                out[name] = example(spec, prop, ref_var, names, depth + 1)
        return out
    if kind == "array":
        return [example(spec, schema.get("items"), ref_var, names, depth + 1)]
    if kind == "integer" or kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return "2023-01-04T21:41:38.930Z"
    return ""


def json_body(spec, op, ref_var, names):
    body = resolve(spec, op.get("requestBody"))
    if not body:
        return None
    media = body.get("content", {}).get("application/json")
    if media is None:
        return None
    return json.dumps(example(spec, media.get("schema"), ref_var, names), indent=2,
                      ensure_ascii=False)


def success_schema(spec, op):
    for status, response in sorted(op.get("responses", {}).items()):
        if status.startswith("2"):
            response = resolve(spec, response)
            media = response.get("content", {}).get("application/json")
            if media:
                return status, resolve(spec, media.get("schema", {}))
    return None, {}


def sets_token(spec, op):
    _, schema = success_schema(spec, op)
    return TOKEN_FIELD in schema.get("properties", {})


def created_variable(spec, method, path, op):
    """`task_id` for POST /tasks (201 with an id, and /tasks/{task_id} exists), else None."""
    status, schema = success_schema(spec, op)
    if method != "POST" or status != "201" or "id" not in schema.get("properties", {}):
        return None
    for other in spec["paths"]:
        match = re.fullmatch(re.escape(path) + r"/\{([^}]+)\}", other)
        if match:
            return match.group(1)
    return None


def secured(spec, op):
    return bool(op.get("security", spec.get("security")))


def query_parameters(params):
    out = []
    for p in params:
        if p.get("in") != "query":
            continue
        default = p.get("schema", {}).get("default", "")
        value = json.dumps(default) if isinstance(default, bool) else str(default)
        out.append((p["name"], value, p.get("description", "")))
    return out


def request_names(spec):
    """{(method, path): name}: the summary, with the route added where summaries repeat."""
    summaries = {}
    for _, ops in operations(spec):
        for method, path, op, _ in ops:
            summaries.setdefault(op.get("summary", ""), []).append((method, path))
    names = {}
    for summary, keys in summaries.items():
        for method, path in keys:
            route = f"{method} {path}"
            names[(method, path)] = (summary if len(keys) == 1 else f"{summary} ({route})") \
                if summary else route
    return names


def describe(op, method, path):
    text = op.get("description", "")
    return (text + "\n\n" if text else "") + f"`{method} {path}`"


# ---- Postman (collection v2.1 and an environment)

def postman(spec):
    names = variables(spec)
    titles = request_names(spec)
    title = spec.get("info", {}).get("title", "fetchd")

    def ref_var(name):
        return "{{" + name + "}}"

    folders = []
    for tag, ops in operations(spec):
        items = []
        for method, path, op, params in ops:
            segments = [s for s in path.split("/") if s]
            url = {
                "raw": "{{base_url}}" + re.sub(r"\{([^}]+)\}", r":\1", path),
                "host": ["{{base_url}}"],
                "path": [re.sub(r"^\{([^}]+)\}$", r":\1", s) for s in segments],
            }
            query = query_parameters(params)
            if query:
                url["query"] = [{"key": k, "value": v, "description": d, "disabled": True}
                                for k, v, d in query]
            path_vars = [p for p in params if p.get("in") == "path"]
            if path_vars:
                url["variable"] = [{"key": p["name"], "value": ref_var(p["name"]),
                                    "description": p.get("description", "")} for p in path_vars]
            request = {"method": method, "header": [], "url": url,
                       "description": describe(op, method, path)}
            if not secured(spec, op):
                request["auth"] = {"type": "noauth"}
            body = json_body(spec, op, ref_var, names)
            if body is not None:
                request["header"].append({"key": "Content-Type", "value": "application/json"})
                request["body"] = {"mode": "raw", "raw": body,
                                   "options": {"raw": {"language": "json"}}}
            item = {"name": titles[(method, path)], "request": request,
                    "response": []}
            script = []
            if sets_token(spec, op):
                script = [
                    "// Keeps the token for every request that needs it (Bearer {{token}}).",
                    "pm.test(\"logged in\", function () { pm.response.to.have.status(200); });",
                    f"pm.collectionVariables.set(\"token\", pm.response.json().{TOKEN_FIELD});",
                    f"pm.environment.set(\"token\", pm.response.json().{TOKEN_FIELD});",
                ]
            elif (var := created_variable(spec, method, path, op)) is not None:
                script = [
                    f"// Keeps the new id for the requests on /{segments[-1]}/{{{var}}}.",
                    "if (pm.response.code === 201) {",
                    f"  pm.collectionVariables.set(\"{var}\", pm.response.json().id);",
                    f"  pm.environment.set(\"{var}\", pm.response.json().id);",
                    "}",
                ]
            if script:
                item["event"] = [{"listen": "test",
                                  "script": {"type": "text/javascript", "exec": script}}]
            items.append(item)
        folders.append({"name": tag, "item": items})
    collection = {
        "info": {
            "_postman_id": str(uuid.uuid5(NAMESPACE, title + ":collection")),
            "name": title,
            "description": spec.get("info", {}).get("description", "") +
            "\n\nGenerated from /openapi.json by scripts/gen_collections.py; run Login first.",
            "schema": POSTMAN_SCHEMA,
        },
        "item": folders,
        "auth": {"type": "bearer",
                 "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]},
        "variable": [{"key": k, "value": v, "type": "string"} for k, v in names.items()],
    }
    environment = {
        "id": str(uuid.uuid5(NAMESPACE, title + ":environment")),
        "name": f"{title} (local)",
        "values": [{"key": k, "value": v, "type": "secret" if k in ("token", "password")
                    else "default", "enabled": True} for k, v in names.items()],
        "_postman_variable_scope": "environment",
    }
    return collection, environment


# ---- Insomnia (export format 4)

def insomnia_response_tag(request_id, json_path):
    """Insomnia's response chaining: the body of `request_id`'s last response, filtered by a
    JSONPath (base64 as Insomnia writes it); sent once when there is no response yet."""
    encoded = base64.b64encode(json_path.encode()).decode()
    return f"{{% response 'body', '{request_id}', 'b64::{encoded}::46b', 'no-history', 60 %}}"


def insomnia(spec):
    names = variables(spec)
    titles = request_names(spec)
    title = spec.get("info", {}).get("title", "fetchd")
    workspace = "wrk_" + re.sub(r"\W", "_", title)

    def ref_var(name):
        return "{{ _." + name + " }}"

    def request_id(op, method, path):
        return "req_" + op.get("operationId", re.sub(r"\W", "_", method + path))

    data = dict(names)
    login = [request_id(op, m, p) for _, ops in operations(spec) for m, p, op, _ in ops
             if sets_token(spec, op)]
    if login:
        data["token"] = insomnia_response_tag(login[0], "$." + TOKEN_FIELD)
    resources = [
        {"_id": workspace, "_type": "workspace", "parentId": None, "name": title,
         "description": spec.get("info", {}).get("description", ""), "scope": "collection"},
        {"_id": "env_" + workspace[4:], "_type": "environment", "parentId": workspace,
         "name": "Base Environment", "data": data, "dataPropertyOrder": {"&": list(data)},
         "color": None, "isPrivate": False, "metaSortKey": 0},
    ]
    sort_key = 0
    for tag, ops in operations(spec):
        folder = "fld_" + re.sub(r"\W", "_", tag)
        sort_key += 1
        resources.append({"_id": folder, "_type": "request_group", "parentId": workspace,
                          "name": tag, "description": "", "environment": {},
                          "metaSortKey": sort_key})
        for method, path, op, params in ops:
            sort_key += 1
            resource = {
                "_id": request_id(op, method, path),
                "_type": "request",
                "parentId": folder,
                "name": titles[(method, path)],
                "description": describe(op, method, path),
                "method": method,
                "url": "{{ _.base_url }}" + re.sub(r"\{([^}]+)\}",
                                                   lambda m: ref_var(m.group(1)), path),
                "parameters": [{"name": k, "value": v, "description": d, "disabled": True}
                               for k, v, d in query_parameters(params)],
                "headers": [],
                "body": {},
                "authentication": ({"type": "bearer", "token": ref_var("token")}
                                   if secured(spec, op) else {}),
                "metaSortKey": sort_key,
            }
            body = json_body(spec, op, ref_var, names)
            if body is not None:
                resource["headers"].append({"name": "Content-Type", "value": "application/json"})
                resource["body"] = {"mimeType": "application/json", "text": body}
            resources.append(resource)
    return {"_type": "export", "__export_format": 4, "__export_date": EXPORT_DATE,
            "__export_source": "fetchd:scripts/gen_collections.py", "resources": resources}


# ---- files

def render(spec):
    """{file name: text} of every generated file."""
    collection, environment = postman(spec)

    def dump(value):
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"

    return {INSOMNIA_FILE: dump(insomnia(spec)), POSTMAN_FILE: dump(collection),
            POSTMAN_ENV_FILE: dump(environment)}


def spec_from_url(base_url):
    with urllib.request.urlopen(base_url.rstrip("/") + "/openapi.json", timeout=10) as r:
        return json.load(r)


def spec_from_binary(binary, timeout=30.0):
    """Starts `binary serve` on a free loopback port over a scratch database, reads
    /openapi.json and stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FETCHD_")}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr", "w+b") as err:
        proc = subprocess.Popen(
            [str(Path(binary).resolve()), "serve", "--listen", "127.0.0.1:0", "--db", f"sqlite://{tmp}/spec.db"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=tmp)
        try:
            deadline = time.monotonic() + timeout
            while True:
                err.seek(0)
                text = err.read().decode(errors="replace")
                match = LISTENING_RE.search(text)
                if match:
                    host = match.group(1).strip("[]")
                    return spec_from_url(f"http://{host}:{match.group(2)}")
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} serve did not start:\n{text}")
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--binary", help="a fetchd binary to start and ask")
    source.add_argument("--spec", help="a saved OpenAPI document")
    source.add_argument("--url", help="a running fetchd, e.g. http://127.0.0.1:8000")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (clients/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a file differs from what it would be")
    args = parser.parse_args(argv)
    if args.binary:
        spec = spec_from_binary(args.binary)
    elif args.spec:
        spec = json.loads(Path(args.spec).read_text())
    else:
        spec = spec_from_url(args.url)
    out = Path(args.out)
    stale = []
    for name, text in render(spec).items():
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print("stale (run make docs): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
