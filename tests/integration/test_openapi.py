# The API description: /openapi.json (OpenAPI 3.1, every route the suite uses, and nothing the
# server does not answer) and the embedded Swagger UI pointed at it.
import re
from urllib.parse import urljoin, urlparse

import pytest
import requests

from conftest import HTTP_TIMEOUT, create_task, register_and_login

# Every operation the integration suite exercises.
USED_OPERATIONS = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/register": {"post"},
    "/login": {"post"},
    "/logout": {"post"},
    "/me": {"get"},
    "/tasks": {"get", "post"},
    "/tasks/{task_id}": {"get", "patch", "delete"},
    "/tasks/{task_id}/status": {"get"},
    "/tasks/{task_id}/reset-attempt": {"post"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def spec(server):
    r = server.get("/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_is_openapi_3_1(spec):
    assert re.match(r"^3\.1\.\d+$", spec.get("openapi", "")), spec.get("openapi")
    assert spec["info"]["title"]
    assert spec["info"]["version"] == "0.1.0"


def test_lists_every_route_the_suite_uses(spec):
    paths = spec.get("paths", {})
    for path, methods in USED_OPERATIONS.items():
        assert path in paths, f"{path} missing from /openapi.json (has {sorted(paths)})"
        documented = set(paths[path]) & HTTP_METHODS
        assert methods <= documented, f"{path}: {sorted(methods - documented)} not documented"


def test_every_operation_documents_responses(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            assert op.get("responses"), f"{method.upper()} {path} has no responses"


def test_bearer_security_scheme(spec):
    schemes = spec.get("components", {}).get("securitySchemes", {})
    bearer = [s for s in schemes.values()
              if s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"]
    assert bearer, f"no http bearer security scheme: {schemes}"
    me = spec["paths"]["/me"]["get"]
    security = me.get("security", spec.get("security"))
    assert security, "/me is not marked as needing the bearer token"
    health = spec["paths"]["/healthz"]["get"]
    assert health.get("security", spec.get("security")) in ([], [{}], None)


def test_every_documented_operation_is_served(server, spec):
    """The reverse direction: nothing in the spec answers 404 (no route) or 405."""
    acct = register_and_login(server)
    for path, item in spec["paths"].items():
        for method in sorted(set(item) & HTTP_METHODS):
            if method == "head":
                continue
            concrete = re.sub(r"\{[^}]+\}", str(create_task(acct)["id"]), path)
            token = acct.token if (path, method) != ("/logout", "post") else None
            r = server.request(method.upper(), concrete, token=token, json={})
            # A 404 about the resource (a job id that does not exist) is fine; the router's own
            # "no route" 404 and 405 are not.
            no_route = r.status_code == 405 or (
                r.status_code == 404 and "no route" in r.json().get("detail", ""))
            assert not no_route, \
                f"{method.upper()} {path} documented but answered {r.status_code}: {r.text[:200]}"


def fetch(url, **kw):
    return requests.get(url, timeout=HTTP_TIMEOUT, **kw)


def test_swagger_ui_is_served_and_points_at_the_spec(server):
    page = fetch(server.url("/swagger-ui"))
    assert page.status_code == 200, page.text[:200]
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "swagger-ui-bundle.js" in html
    base = page.url  # after any redirect, as a browser would resolve relative links
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    local = [urljoin(base, ref) for ref in refs
             if not urlparse(ref).scheme and not ref.startswith("//") and not ref.startswith("#")]
    assert local, f"no local assets referenced: {refs}"
    assert all(urlparse(u).path.startswith("/swagger-ui") for u in local), local
    texts = [html]  # the page and its scripts other than the bundle
    for url in local:
        r = fetch(url)
        assert r.status_code == 200, f"{url}: {r.status_code}"
        if url.endswith(".js"):
            assert "javascript" in r.headers["Content-Type"], (url, r.headers["Content-Type"])
            if not url.endswith("swagger-ui-bundle.js"):
                texts.append(r.text)
        elif url.endswith(".css"):
            ctype = r.headers["Content-Type"]
            assert ctype.startswith("text/css"), (url, ctype)
    bundle = [u for u in local if u.endswith("swagger-ui-bundle.js")]
    assert bundle, local
    assert len(fetch(bundle[0]).content) > 100_000  # the real bundle, not a stub
    # The page (or its initializer script) loads our spec, not the petstore demo.
    assert any("/openapi.json" in t for t in texts), "Swagger UI is not pointed at /openapi.json"
    assert not any("petstore.swagger.io" in t for t in texts), "still the petstore demo"


def test_swagger_ui_unknown_asset_is_404(server):
    r = fetch(server.url("/swagger-ui/no-such-file.js"))
    assert r.status_code == 404
