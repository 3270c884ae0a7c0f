// openid-client (Node), unmodified, against authledger: discovery, dynamic registration
// (RFC 7591), the code flow with PKCE and nonce, the ID token's claims checked (issuer,
// audience, nonce, expiry), a refresh, and userinfo.
//
// Usage: node flow.mjs ISSUER USERNAME PASSWORD. The person's part (sign in, allow) is done
// with plain HTTP requests, as a browser would. Prints the verified claims as JSON.
import * as client from "openid-client";

const [issuer, username, password] = process.argv.slice(2);
const REDIRECT = "http://127.0.0.1:9/callback";
// The test server speaks http on the loopback address.
const insecure = { execute: [client.allowInsecureRequests] };

const config = await client.dynamicClientRegistration(
  new URL(issuer),
  {
    client_name: "openid-client agent",
    redirect_uris: [REDIRECT],
    grant_types: ["authorization_code", "refresh_token"],
    scope: "openid email",
    // openid-client authenticates with client_secret_post unless told otherwise; the server
    // holds a client to the method it registered.
    token_endpoint_auth_method: "client_secret_post",
  },
  undefined,
  insecure,
);

const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: REDIRECT,
  scope: "openid email",
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: "S256",
  nonce,
});

// A browser: keeps cookies, follows nothing by itself.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  const response = await fetch(new URL(url, issuer), { ...init, headers, redirect: "manual" });
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(";");
    const at = pair.indexOf("=");
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return response;
}
const unescape = (s) =>
  s.replace(/&#x([0-9a-f]+);/gi, (_, hex) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
function hiddenFields(page) {
  const form = new URLSearchParams();
  for (const [, name, value] of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    form.append(unescape(name), unescape(value));
  }
  return form;
}
function expect(condition, what) {
  if (!condition) throw new Error(what);
}

const toLogin = await browse(authorize);
expect(toLogin.status === 303 || toLogin.status === 302, `authorize answered ${toLogin.status}`);
const loginPage = await (await browse(toLogin.headers.get("location"))).text();
const login = hiddenFields(loginPage);
login.set("username", username);
login.set("password", password);
const signedIn = await browse("/login", { method: "POST", body: login });
expect(signedIn.status === 303, `sign-in answered ${signedIn.status}`);
const consent = await browse(signedIn.headers.get("location"));
expect(consent.status === 200, `consent page answered ${consent.status}`);
const consentPage = await consent.text();
const action = unescape(consentPage.match(/<form method="post" action="([^"]+)"/)[1]);
const decision = hiddenFields(consentPage);
decision.set("decision", "allow");
const back = await browse(action, { method: "POST", body: decision });
const callback = back.headers.get("location");
expect(callback && callback.startsWith(REDIRECT), `redirected to ${callback}`);

const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
expect(refreshed.access_token !== tokens.access_token, "refresh gave the same access token");
const info = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
console.log(JSON.stringify({ sub: claims.sub, email: claims.email, userinfo_email: info.email }));
