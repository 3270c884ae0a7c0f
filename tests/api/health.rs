use crate::helpers::*;

on_both_stores! {
    async fn the_server_answers_healthz_with_a_request_id(kind: Kind) {
        let app = TestApp::spawn(kind).await;

        let response = app.http.get(app.url("/healthz")).send().await.unwrap();

        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value = response.json().await.unwrap();
        let store = if kind == Kind::Sqlite { "sqlite" } else { "postgres" };
        assert_eq!(body, serde_json::json!({ "status": "ok", "store": store }));
    }
}

on_both_stores! {
    async fn an_unknown_path_is_a_json_404(kind: Kind) {
        let app = TestApp::spawn(kind).await;

        let response = app.http.get(app.url("/no/such/thing")).send().await.unwrap();

        assert_eq!(response.status(), 404);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
}

on_both_stores! {
    async fn the_server_stops_cleanly_when_asked_and_starts_again_on_the_same_store(kind: Kind) {
        let app = TestApp::spawn(kind).await;
        let db = app.stop().await;

        let app = TestApp::spawn_on(db).await;
        let response = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}
