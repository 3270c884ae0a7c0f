//! Slow, oversized and malformed requests: answered quickly, in the endpoint's own format.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn short_limits() -> authledger::http::Limits {
    authledger::http::Limits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        max_connections: 8,
        ..Default::default()
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

on_both_stores! {
    async fn a_client_that_never_finishes_its_headers_is_disconnected(kind: Kind) {
        let app = TestApp::spawn_limited(kind, short_limits()).await;
        let mut stream = connect(&app).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = Instant::now();
        let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "still open after 5 s");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    }
}

on_both_stores! {
    async fn a_body_shorter_than_announced_times_out_in_the_endpoints_format(kind: Kind) {
        let app = TestApp::spawn_limited(kind, short_limits()).await;
        let mut stream = connect(&app).await;
        stream
            .write_all(
                b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 100\r\n\r\ngrant_type",
            )
            .await
            .unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("answered");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    }
}

on_both_stores! {
    async fn connections_past_the_cap_are_refused_quickly_and_service_resumes(kind: Kind) {
        let app = TestApp::spawn_limited(kind, short_limits()).await;
        let mut idle = Vec::new();
        for _ in 0..8 {
            let mut stream = connect(&app).await;
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
            idle.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = connect(&app).await;
        let answer = read_until_closed(&mut extra, Duration::from_secs(2)).await.expect("answered at once");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
        // The slow ones are dropped after the header timeout, and everyone is served again.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let health = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        drop(idle);
    }
}

/// `(status, content type, body)` of a request.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn assert_oauth_json(
    what: &str,
    (status, content_type, body): &(StatusCode, String, String),
    expected: StatusCode,
) {
    assert_eq!(*status, expected, "{what}: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type} {body}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert!(
        body["error"].is_string() && body["error_description"].is_string(),
        "{what}: {body}"
    );
}

fn assert_page(
    what: &str,
    (status, content_type, body): &(StatusCode, String, String),
    expected: StatusCode,
) {
    assert_eq!(*status, expected, "{what}: {body}");
    assert!(
        content_type.starts_with("text/html"),
        "{what}: {content_type}"
    );
    assert!(body.contains("<html"), "{what}: {body}");
}

on_both_stores! {
    async fn refusals_of_the_http_layer_come_in_the_endpoints_own_format(kind: Kind) {
        let app = TestApp::spawn(kind).await;
        // A 10 MB body is answered as soon as its length is known, before it is sent (a
        // client still writing it then sees the connection close, as with any server).
        for (path, content_type, expected) in [
            ("/oauth/token", "application/x-www-form-urlencoded", "application/json"),
            ("/admin/api/clients", "application/json", "application/json"),
            ("/login", "application/x-www-form-urlencoded", "text/html"),
        ] {
            let mut stream = connect(&app).await;
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
                 Content-Length: 10485760\r\n\r\na=xxxx"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let raw = read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("answered");
            assert!(raw.starts_with("HTTP/1.1 413"), "{path}: {raw}");
            assert!(raw.contains(&format!("content-type: {expected}")), "{path}: {raw}");
        }
        // The same without a length: the body is read up to the limit, then refused.
        let mut stream = connect(&app).await;
        let chunk = vec![b'x'; 300 * 1024];
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            chunk.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&chunk).await;
        let raw = read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("answered");
        assert!(raw.starts_with("HTTP/1.1 413"), "chunked: {raw}");

        assert_oauth_json("GET on the token endpoint", &answer(app.http.get(app.url("/oauth/token"))).await, StatusCode::METHOD_NOT_ALLOWED);
        assert_oauth_json("DELETE on introspection", &answer(app.http.delete(app.url("/oauth/introspect"))).await, StatusCode::METHOD_NOT_ALLOWED);
        assert_page("PUT on the sign-in page", &answer(app.http.put(app.url("/login"))).await, StatusCode::METHOD_NOT_ALLOWED);
        assert_page("a repeated return_to", &answer(app.http.get(app.url("/login?return_to=a&return_to=b"))).await, StatusCode::BAD_REQUEST);
        assert_page("a NUL in the authorization request", &answer(app.http.get(app.url("/oauth/authorize?client_id=%00"))).await, StatusCode::BAD_REQUEST);
        assert_oauth_json("an unknown path", &answer(app.http.get(app.url("/nowhere"))).await, StatusCode::NOT_FOUND);
        assert_oauth_json("admin API without JSON", &answer(app.http.post(app.url("/admin/api/clients")).body("x")).await, StatusCode::UNAUTHORIZED);
    }
}
