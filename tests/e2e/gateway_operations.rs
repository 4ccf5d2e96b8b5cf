//! The gateway's edges over real HTTP: every operation `/openapi.json` documents is called and
//! is served (its route exists with its method, it reaches its service, and it answers JSON or
//! a problem, never a gateway failure); calls without a token are refused unless documented
//! public; CORS preflights for configured origins only; bodies over the limit refused with 413;
//! per-address and per-token rate limits answered 429 with `Retry-After`.

use jamaa_tests::{Backend, Options, send_for_headers, spawn_stack, spawn_stack_with};
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `path` with each `{param}` filled: the commune's code for commune codes, a fresh UUID else.
fn filled(path: &str, commune: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + end];
        if name.to_lowercase().contains("code") {
            out.push_str(commune);
        } else {
            out.push_str(&uuid::Uuid::now_v7().to_string());
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    let (_, admin) = stack.create_commune("GWO", 3).await;
    let (status, _, document) = stack.http("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = document["paths"].as_object().expect("paths").clone();
    let mut called = 0;
    let mut wrong = Vec::new();
    for (path, item) in &paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let public = operation.get("security") == Some(&json!([]));
            let url = filled(path, "GWO");
            let body = operation.get("requestBody").map(|_| json!({}));
            called += 1;
            for token in [None, Some(admin.as_str())] {
                let (status, content_type, answer) = stack
                    .http(&method.to_uppercase(), &url, token, body.clone())
                    .await;
                let problem_type = answer["type"].as_str().unwrap_or_default();
                let served = !problem_type.ends_with("/ROUTE_NOT_FOUND")
                    && !problem_type.ends_with("/METHOD_NOT_ALLOWED");
                let who = if token.is_some() { "admin" } else { "nobody" };
                if !served {
                    wrong.push(format!(
                        "{method} {path} by {who}: not served ({status} {answer})"
                    ));
                }
                if status >= 500 && status != 503 {
                    wrong.push(format!("{method} {path} by {who}: {status} {answer}"));
                }
                // Open311 answers errors as its spec's array, in the format asked for.
                let error_type = if path.starts_with("/open311/") {
                    "application/json"
                } else {
                    "application/problem+json"
                };
                if status >= 400 && !content_type.starts_with(error_type) {
                    wrong.push(format!(
                        "{method} {path} by {who}: {status} as {content_type}"
                    ));
                }
                if token.is_none() && !public && status != 401 {
                    wrong.push(format!(
                        "{method} {path} without a token: {status}, not 401"
                    ));
                }
            }
        }
    }
    assert!(called > 100, "only {called} operations are documented");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_body_limit_and_rate_limits() {
    let options = Options {
        extra_env: vec![
            (
                "JAMAA__GATEWAY__CORS_ALLOWED_ORIGINS".into(),
                "https://app.jamaa.test".into(),
            ),
            (
                "JAMAA__GATEWAY__RATE_LIMIT_PER_ADDRESS_PER_MINUTE".into(),
                "40".into(),
            ),
            (
                "JAMAA__GATEWAY__RATE_LIMIT_PER_TOKEN_PER_MINUTE".into(),
                "5".into(),
            ),
        ],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(Backend::Embedded, options).await else {
        return;
    };
    let base = stack.http_url();
    let preflight = |origin: &'static str| {
        let url = format!("{base}/v1/requests");
        async move {
            send_for_headers(
                "OPTIONS",
                &url,
                &[
                    ("origin", origin.to_string()),
                    ("access-control-request-method", "POST".to_string()),
                    (
                        "access-control-request-headers",
                        "authorization,content-type".to_string(),
                    ),
                ],
                String::new(),
            )
            .await
        }
    };
    // A configured origin may call; another gets no CORS grant.
    let (status, headers, _) = preflight("https://app.jamaa.test").await;
    assert!(status < 300, "{status}");
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.jamaa.test")
    );
    let allowed_methods = headers
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_uppercase();
    assert!(allowed_methods.contains("POST"), "{allowed_methods}");
    let (_, headers, _) = preflight("https://evil.example").await;
    assert!(headers.get("access-control-allow-origin").is_none());

    // Over 1 MiB: 413, as a problem.
    let big = json!({"description": "x".repeat(1024 * 1024 + 10)});
    let (status, content_type, problem) = stack.http("POST", "/v1/citizens", None, Some(big)).await;
    assert_eq!(status, 413, "{problem}");
    assert!(content_type.starts_with("application/problem+json"));
    assert_eq!(problem["type"], "https://jamaa.ma/problems/BODY_TOO_LARGE");

    // Per token: 5 a minute, then 429 with Retry-After; another token still passes.
    let token = "a-token-that-identity-refuses";
    let url = format!("{base}/v1/requests");
    let call = |token: &str| {
        let url = url.clone();
        let headers = vec![("authorization", format!("Bearer {token}"))];
        async move { send_for_headers("GET", &url, &headers, String::new()).await }
    };
    for _ in 0..5 {
        let (status, _, _) = call(token).await;
        assert_eq!(status, 401);
    }
    let (status, headers, body) = call(token).await;
    assert_eq!(status, 429);
    let retry_after: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: Value = serde_json::from_slice(&body).expect("a problem");
    assert_eq!(problem["type"], "https://jamaa.ma/problems/RATE_LIMITED");
    let (status, _, _) = call("another-token").await;
    assert_eq!(status, 401);

    // Per address: 40 a minute in all (7 spent above, and the preflights and the big body);
    // the health probe is never limited.
    let mut limited = false;
    for index in 0..40 {
        let (status, _, _) = call(&format!("token-{index}")).await;
        if status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the address's limit was never reached");
    let (status, _, _) =
        send_for_headers("GET", &format!("{base}/healthz"), &[], String::new()).await;
    assert_eq!(status, 200);
    stack.stop().await;
}
