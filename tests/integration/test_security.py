# What must never leak into the logs (issue 6): passwords, bearer tokens, Authorization
# headers, task header values and query parameters — at the most verbose log level, through
# every path that logs (access log, auth failures, runs, errors).
import requests

from conftest import ENGINE_ARGS, first_run, register_and_login

SECRETS = {
    "header": "hdr-secret-7f3a9c",
    "api_key": "key-secret-2b8e41",
    "query": "qry-secret-91d0c5",
    "bad_token": "bogus-token-5e6a2d",
    "new_password": "new-password-c4f1e8",
}


def test_no_secret_reaches_the_log(fixture_server, fetchd_factory):
    srv = fetchd_factory(args=ENGINE_ARGS, log_level="debug")
    account = register_and_login(srv)
    params = {"headers": {"Authorization": f"Bearer {SECRETS['header']}",
                          "X-Api-Key": SECRETS["api_key"]},
              "query": {"token": SECRETS["query"]}}
    _, job = first_run(account, fixture_server.url("/echo"), parameters=params)
    assert job["status"] == "succeeded", job
    # A failing run logs its error: that line must not carry the request either.
    first_run(account, fixture_server.url("/status/500"), parameters=params)

    # Bad and good tokens, in headers and (wrongly) in the query string.
    for token in (SECRETS["bad_token"], account.token):
        srv.get("/me", headers={"Authorization": f"Bearer {token}"})
        srv.get(f"/tasks?access_token={token}", token=token)
    r = srv.post("/login", json={"username": account.username, "password": "wrong-password!"})
    assert r.status_code == 401
    r = srv.post("/password", token=account.token,
                 json={"current_password": account.password,
                       "new_password": SECRETS["new_password"]})
    assert r.status_code == 204, r.text
    r = srv.post("/register", json={"username": "x", "password": SECRETS["new_password"]})
    assert r.status_code == 422  # a logged validation failure
    requests.get(srv.url("/nope?secret=" + SECRETS["query"]), timeout=5)
    srv.stop()

    log = srv.stderr_text() + (srv.workdir / f"{srv.name}.stdout").read_text(errors="replace")
    assert "GET /me 401" in log and "POST /login 401" in log, log[-2000:]  # it did log
    leaked = {name: value for name, value in
              {**SECRETS, "token": account.token, "password": account.password}.items()
              if value in log}
    assert not leaked, f"secrets in the log: {sorted(leaked)}"
