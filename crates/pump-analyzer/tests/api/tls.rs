//! HTTPS served directly (`TLS_CERT_FILE` / `TLS_KEY_FILE`): a self-signed pair made with the
//! `openssl` command, requests made with `curl` (the test client has no TLS of its own).

use std::process::Command;

use crate::helpers::{TempDir, spawn_app};

/// A self-signed certificate for 127.0.0.1 and localhost; `None` without the openssl command.
fn self_signed(dir: &TempDir) -> Option<(String, String)> {
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    if !status.status.success() {
        eprintln!("SKIPPED TLS test: openssl failed: {}", String::from_utf8_lossy(&status.stderr));
        return None;
    }
    Some((cert.display().to_string(), key.display().to_string()))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-s", "-i", "--max-time", "10"]).args(args).output().expect("curl runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[tokio::test]
async fn https_is_served_with_secure_cookies_and_plain_http_is_refused() {
    let dir = TempDir::new();
    let Some((cert, key)) = self_signed(&dir) else { return };
    let app = spawn_app(&[("TLS_CERT_FILE", cert.as_str()), ("TLS_KEY_FILE", key.as_str())]).await;
    let https = app.address.replace("http://", "https://");
    let run = |path: &'static str, https: String, cert: String| {
        tokio::task::spawn_blocking(move || curl(&["--cacert", &cert, &format!("{https}{path}")]))
    };
    let (ok, response) = run("/healthz", https.clone(), cert.clone()).await.unwrap();
    assert!(ok && response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("{\"status\":\"ok\"}"));
    let (_, response) = run("/api/session/info", https.clone(), cert.clone()).await.unwrap();
    let cookie = response.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_default();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{response}");
    // The certificate is checked for real: without trusting it, curl refuses.
    let plain_https = https.clone();
    let (ok, _) = tokio::task::spawn_blocking(move || curl(&[&format!("{plain_https}/healthz")])).await.unwrap();
    assert!(!ok, "an untrusted self-signed certificate must not verify");
    let plain = app.address.clone();
    let (_, response) = tokio::task::spawn_blocking(move || curl(&[&format!("{plain}/healthz")])).await.unwrap();
    assert!(!response.starts_with("HTTP/1.1 200"), "plain HTTP on the TLS port: {response}");
}

#[tokio::test]
async fn an_unusable_certificate_stops_start_up_naming_the_file() {
    let dir = TempDir::new();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let bogus = bogus.display().to_string();
    let mut vars = std::collections::HashMap::new();
    vars.insert("API_PORT".to_string(), "0".to_string());
    vars.insert("DATABASE_URL".to_string(), format!("sqlite://{}", dir.path().join("db.sqlite").display()));
    vars.insert("TLS_CERT_FILE".to_string(), bogus.clone());
    vars.insert("TLS_KEY_FILE".to_string(), bogus);
    let settings = pump_analyzer::config::Settings::from_vars(&vars, &Default::default()).unwrap();
    let error = match pump_analyzer::Application::build(settings).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a bogus certificate must not start"),
    };
    assert!(error.contains("TLS_CERT_FILE"), "{error}");
}
