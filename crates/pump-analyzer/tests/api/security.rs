//! The security layer of seed 003 and SPEC §2 through real HTTP.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::helpers::{bet, spawn_app};

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn header_u64(response: &reqwest::Response, name: &str) -> u64 {
    response.headers().get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap().parse().unwrap()
}

/// The seed's "Testing Security Configuration" section, run as written (port aside) with curl.
#[tokio::test]
async fn the_seed_curl_commands_behave_as_the_seed_promises() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let app = spawn_app(&[("INGEST_TOKEN", "your-token-here")]).await;
    let base = app.address.replace("127.0.0.1", "localhost");
    let script = format!(
        r#"
echo "no-token $(curl -s -o /dev/null -w '%{{http_code}}' -X POST {base}/live/ingest \
  -H "Content-Type: application/json" \
  -d '{{"id": "test", "nonce": 1}}')"
echo "with-token $(curl -s -o /dev/null -w '%{{http_code}}' -X POST {base}/live/ingest \
  -H "Content-Type: application/json" \
  -H "X-Ingest-Token: your-token-here" \
  -d '{{"id": "test", "nonce": 1}}')"
for i in {{1..70}}; do
  curl -s -o /dev/null -w 'loop %{{http_code}}\n' -X POST {base}/live/ingest \
    -H "X-Ingest-Token: your-token-here" \
    -d '{{"id": "test'$i'", "nonce": '$i'}}'
done
"#
    );
    let output = tokio::process::Command::new("bash").arg("-c").arg(&script).output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "no-token 401");
    assert!(lines[1].starts_with("with-token ") && lines[1] != "with-token 401", "{}", lines[1]);
    let codes: Vec<&str> = lines[2..].iter().map(|l| l.trim_start_matches("loop ")).collect();
    assert_eq!(codes.len(), 70);
    // The with-token request above used one slot of the minute: 59 more pass, the rest are 429.
    assert!(codes[..59].iter().all(|c| *c != "429"), "{codes:?}");
    assert!(codes[59..].iter().all(|c| *c == "429"), "{codes:?}");
}

#[tokio::test]
async fn the_seventy_request_loop_gets_sixty_through_then_429_with_all_headers() {
    let app = spawn_app(&[("INGEST_TOKEN", "your-token-here")]).await;
    let mut statuses = Vec::new();
    for i in 1..=70 {
        let response = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Ingest-Token", "your-token-here")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("{{\"id\": \"test{i}\", \"nonce\": {i}}}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        for name in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit", "ratelimit-policy"]
        {
            assert!(response.headers().contains_key(name), "{name} missing on response {i}");
        }
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), 60);
        if status == 429 {
            let retry_after = header_u64(&response, "retry-after");
            let reset = header_u64(&response, "x-ratelimit-reset");
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
            assert!(reset.abs_diff(unix_now() + retry_after) <= 1, "reset {reset} vs retry {retry_after}");
            assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 0);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["detail"], "Rate limit exceeded. Maximum 60 requests per minute allowed.");
        } else {
            assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 60 - i);
            assert!(!response.headers().contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert!(statuses[..60].iter().all(|s| *s == 422), "{statuses:?}");
    assert!(statuses[60..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn token_failures_get_the_two_messages_and_use_no_quota() {
    let app = spawn_app(&[("INGEST_TOKEN", "right"), ("INGEST_RATE_LIMIT", "3")]).await;
    for _ in 0..5 {
        let missing = app.ingest(&bet("a", 1)).await;
        assert_eq!(missing.status(), 401);
        assert_eq!(missing.json::<Value>().await.unwrap()["detail"], "X-Ingest-Token header is required");
        let wrong = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Ingest-Token", "wrong")
            .json(&bet("a", 1))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(header_u64(&wrong, "x-ratelimit-remaining"), 3);
        assert_eq!(wrong.json::<Value>().await.unwrap()["detail"], "Invalid ingest token");
    }
    for n in 1..=3 {
        let ok = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Ingest-Token", "right")
            .json(&bet("a", n))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let limited = app
        .client
        .post(app.url("/live/ingest"))
        .header("X-Ingest-Token", "right")
        .json(&bet("z", 9))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 1);
}

#[tokio::test]
async fn several_comma_separated_tokens_are_all_valid() {
    let app = spawn_app(&[("INGEST_TOKEN", "old-token, new-token")]).await;
    for (i, token) in ["old-token", "new-token"].iter().enumerate() {
        let response = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Ingest-Token", *token)
            .json(&bet(&format!("t{i}"), 1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{token}");
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_limit() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "5")]).await;
    let mut statuses = Vec::new();
    for n in 1..=8 {
        let response = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Forwarded-For", format!("10.9.8.{n}"))
            .json(&bet(&format!("s{n}"), n))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429, 429]);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_keys_the_limit_per_client() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "2"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let post = |client: &'static str, n: i64| {
        let request = app
            .client
            .post(app.url("/live/ingest"))
            .header("X-Forwarded-For", format!("{client}, 127.0.0.1"))
            .json(&bet(&format!("{client}-{n}"), n));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post("198.51.100.1", 1).await, 200);
    assert_eq!(post("198.51.100.1", 2).await, 200);
    assert_eq!(post("198.51.100.1", 3).await, 429);
    assert_eq!(post("198.51.100.2", 4).await, 200);
}

#[tokio::test]
async fn a_zero_rate_limit_disables_limiting() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    for n in 1..=120 {
        let response = app.ingest(&bet(&format!("u{n}"), n)).await;
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
}

#[tokio::test]
async fn successful_ingest_carries_the_rate_limit_headers() {
    let app = spawn_app(&[]).await;
    let response = app.ingest(&bet("h", 1)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), 60);
    assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 59);
    let reset = header_u64(&response, "x-ratelimit-reset");
    assert!(reset >= unix_now() && reset <= unix_now() + 61);
    assert_eq!(response.headers()["ratelimit-policy"], "\"ingest\";q=60;w=60");
    assert!(response.headers()["ratelimit"].to_str().unwrap().starts_with("\"ingest\";r=59;t="));
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_permits_the_ingest_token() {
    let app = spawn_app(&[("API_CORS_ORIGINS", "http://localhost:5173, http://localhost:3000")]).await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/live/ingest"))
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-ingest-token")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://localhost:3000");
    assert!(headers.get("access-control-allow-credentials").is_none(), "no credentials for other origins");
    assert_eq!(headers["access-control-max-age"], "600");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for name in ["x-ingest-token", "content-type", "authorization", "x-csrf-token"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    let actual = app
        .client
        .post(app.url("/live/ingest"))
        .header("Origin", "http://localhost:5173")
        .json(&bet("c", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 200);
    let exposed = actual.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    for name in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"] {
        assert!(exposed.contains(name), "{exposed}");
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_app(&[]).await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/live/ingest"))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    let get = app.client.get(app.url("/healthz")).header("Origin", "http://evil.example").send().await.unwrap();
    assert!(!get.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn open_ingest_refuses_posts_from_foreign_web_pages() {
    let app = spawn_app(&[]).await;
    let response = app
        .client
        .post(app.url("/live/ingest"))
        .header("Origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(bet("forged", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("http://evil.example"));
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 0);
    let allowed = app
        .client
        .post(app.url("/live/ingest"))
        .header("Origin", "http://localhost:5173")
        .json(&bet("ok", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let same_origin = app
        .client
        .post(app.url("/live/ingest"))
        .header("Origin", app.address.clone())
        .json(&bet("own", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 200);
}

#[tokio::test]
async fn with_a_token_the_origin_does_not_matter() {
    let app = spawn_app(&[("INGEST_TOKEN", "t")]).await;
    let response = app
        .client
        .post(app.url("/live/ingest"))
        .header("Origin", "http://elsewhere.example")
        .header("X-Ingest-Token", "t")
        .json(&bet("x", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn foreign_host_names_are_refused_on_a_loopback_server() {
    let app = spawn_app(&[("ALLOWED_HOSTS", "pump.lan")]).await;
    let port = app.address.rsplit(':').next().unwrap().to_string();
    for (host, expected) in [
        (format!("evil.example:{port}"), 421),
        ("attacker.test".to_string(), 421),
        (format!("localhost:{port}"), 200),
        (format!("[::1]:{port}"), 200),
        (format!("pump.lan:{port}"), 200),
    ] {
        let response = app.client.get(app.url("/healthz")).header("Host", host.clone()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{host}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let ingest = app
        .client
        .post(app.url("/live/ingest"))
        .header("Host", "evil.example")
        .json(&bet("x", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), 421);
    assert_eq!(app.count("SELECT count(*) FROM bets").await, 0);
}

#[tokio::test]
async fn ipv6_loopback_binding_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine has no IPv6 loopback");
        return;
    }
    let app = spawn_app(&[("API_HOST", "::1")]).await;
    assert!(app.address.starts_with("http://[::1]:"), "{}", app.address);
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let ingest = app.ingest(&json!(bet("v6", 1))).await;
    assert_eq!(ingest.status(), 200);
}

/// Slow loris: a client that trickles its request headers is disconnected once the header-read
/// time limit passes, and other clients are served meanwhile.
#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app(&[]).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        // One more header byte every half second: never a complete request.
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(std::time::Duration::from_millis(500), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                closed = true; // the server answered (408) and will close
                break;
            }
            Err(_) => {}
        }
        assert_eq!(app.get("/healthz").await.0, 200, "other clients are served meanwhile");
    }
    assert!(closed, "the trickling connection was still open after {:?}", started.elapsed());
    assert!(started.elapsed() >= std::time::Duration::from_secs(9), "cut off too early: {:?}", started.elapsed());
}
