//! A session cookie is honoured only while its session is open: signing out, a password
//! change and disabling the account end it, and a copy of the cookie stops working too.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::*;
use crate::oauth::flow::*;

/// A browser whose cookies the test holds: `Cookie` header value after signing in.
struct Cookies(Vec<(String, String)>);

impl Cookies {
    fn absorb(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

async fn sign_in(app: &TestApp, user: &str) -> Cookies {
    let mut cookies = Cookies(vec![]);
    let page = app
        .http
        .get(app.url("/login?return_to=%2Flogin"))
        .send()
        .await
        .unwrap();
    cookies.absorb(&page);
    let mut form = hidden_fields(&page.text().await.unwrap());
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password_of(user)));
    let response = app
        .http
        .post(app.url("/login"))
        .header(COOKIE, cookies.header())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookies.absorb(&response);
    cookies
}

/// Whether `cookies` still sign the person in: an authorization request then shows the
/// consent page instead of sending them to sign in.
async fn signed_in(
    flow: &Flow,
    client: &authledger::admin::clients::NewClient,
    cookies: &Cookies,
) -> bool {
    let (_, challenge) = pkce();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let response = flow
        .app
        .http
        .get(flow.app.url(&format!("/oauth/authorize?{query}")))
        .header(COOKIE, cookies.header())
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER | StatusCode::FOUND => {
            let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(location.starts_with("/login"), "{location}");
            false
        }
        other => panic!("unexpected {other}"),
    }
}

on_both_stores! {
    async fn a_copied_cookie_stops_working_after_sign_out(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let cookies = sign_in(&flow.app, "alice").await;
        let copy = Cookies(cookies.0.clone());
        assert!(signed_in(&flow, &client, &copy).await);

        let page = flow.app.http.get(flow.app.url("/login?return_to=%2Flogin")).header(COOKIE, cookies.header()).send().await.unwrap();
        let csrf = hidden_fields(&page.text().await.unwrap());
        let response = flow
            .app
            .http
            .post(flow.app.url("/logout"))
            .header(COOKIE, cookies.header())
            .form(&csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!signed_in(&flow, &client, &copy).await, "the copied cookie still signs in");
        let history = flow.history("User", "alice").await;
        assert!(history.ends_with(&["SessionStarted".to_owned(), "SessionEnded".to_owned()]), "{history:?}");

        // A restarted server remembers which sessions are open.
        let fresh = sign_in(&flow.app, "alice").await;
        let db = flow.app.stop().await;
        let flow = Flow::with_app(TestApp::spawn_on(db).await).await;
        assert!(signed_in(&flow, &client, &fresh).await);
        assert!(!signed_in(&flow, &client, &copy).await);
    }
}

on_both_stores! {
    async fn a_password_change_or_disabling_the_user_ends_every_session(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let first = sign_in(&flow.app, "alice").await;
        let second = sign_in(&flow.app, "alice").await;
        let output = cli_with_stdin(&flow.app.db, &["user", "set-password", "alice", "--password-stdin"], "a new password\n");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        flow.app.settle().await;
        assert!(!signed_in(&flow, &client, &first).await);
        assert!(!signed_in(&flow, &client, &second).await);

        flow.user("bob", &[]).await;
        let bobs = sign_in(&flow.app, "bob").await;
        assert!(signed_in(&flow, &client, &bobs).await);
        let output = cli(&flow.app.db, &["user", "disable", "bob"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        flow.app.settle().await;
        let output = cli(&flow.app.db, &["user", "enable", "bob"]);
        assert!(output.status.success());
        flow.app.settle().await;
        assert!(!signed_in(&flow, &client, &bobs).await, "re-enabling revives no session");
    }
}
