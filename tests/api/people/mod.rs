//! The pages people see and the sign-out protocols: a person's account page, sign-out, and
//! OpenID Connect RP-Initiated Logout.

mod account;
mod backchannel;
mod in_a_browser;
mod logout;
pub mod two_factor;

use crate::oauth::flow::*;

/// The hidden fields of each `<form method="post" action="{action}">` on the page.
pub fn forms(html: &str, action: &str) -> Vec<Vec<(String, String)>> {
    let opening = format!("<form method=\"post\" action=\"{action}\">");
    html.split(&opening)
        .skip(1)
        .map(|rest| hidden_fields(rest.split("</form>").next().unwrap_or_default()))
        .collect()
}

/// Whether the browser is signed in: the authorization endpoint answers without sending it to
/// the sign-in page.
pub async fn signed_in(flow: &Flow, client: &authledger::admin::clients::NewClient) -> bool {
    let (_, challenge) = pkce();
    let response = flow
        .authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .await;
    !(response.status().is_redirection() && redirected(&response).url.path() == "/login")
}

/// Signs alice in, lets her allow the client, and returns the token response.
pub async fn tokens_for_alice(
    flow: &Flow,
    client: &authledger::admin::clients::NewClient,
) -> serde_json::Value {
    let (verifier, challenge) = pkce();
    let code = flow
        .code(client, "alice", &[("scope", "openid profile")], &challenge)
        .await;
    let (status, _, tokens) = flow.exchange(Auth::Basic(client), &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}
