"""Authlib, unmodified, against authledger: discovery, dynamic registration (RFC 7591), the
code flow with PKCE and nonce, and the ID token verified against the published JWKS.

Usage: authlib_flow.py ISSUER USERNAME PASSWORD. The person's part (sign in, allow) is done
with plain HTTP requests, as a browser would. Prints the verified claims as JSON.
"""
import html
import json
import re
import sys
from urllib.parse import urljoin

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

REDIRECT = "http://127.0.0.1:9/callback"


def hidden_fields(page):
    pairs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {html.unescape(k): html.unescape(v) for k, v in pairs}


def main(issuer, username, password):
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta["issuer"]

    registered = requests.post(
        meta["registration_endpoint"],
        json={
            "client_name": "Authlib agent",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid email",
        },
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    registered = registered.json()

    client = OAuth2Session(
        registered["client_id"],
        registered["client_secret"],
        scope="openid email",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, _state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    browser = requests.Session()
    to_login = browser.get(url, allow_redirects=False)
    login_url = urljoin(issuer, to_login.headers["location"])
    form = hidden_fields(browser.get(login_url, timeout=10).text)
    form.update(username=username, password=password)
    signed_in = browser.post(issuer + "/login", data=form, allow_redirects=False, timeout=10)
    assert signed_in.status_code == 303, signed_in.text
    consent = browser.get(urljoin(issuer, signed_in.headers["location"]), allow_redirects=False, timeout=10)
    assert consent.status_code == 200, consent.status_code
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', consent.text).group(1))
    form = hidden_fields(consent.text)
    form["decision"] = "allow"
    back = browser.post(urljoin(issuer, action), data=form, allow_redirects=False, timeout=10)
    callback = back.headers["location"]
    assert callback.startswith(REDIRECT), callback

    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": registered["client_id"]},
            "nonce": {"essential": True, "value": nonce},
        },
    )
    claims.validate()
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    print(json.dumps({"sub": claims["sub"], "email": claims.get("email"), "client_id": registered["client_id"]}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
