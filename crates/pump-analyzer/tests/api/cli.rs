//! The real executable: banner, configuration errors, `token`, `config`, the security log file,
//! `.env` loading and token reload on SIGHUP.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{TempDir, bet, binary, spawn_binary};

fn run(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let dir = TempDir::new();
    let mut command = Command::new(binary());
    command.current_dir(dir.path()).env_clear().args(args);
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn malformed_configuration_stops_start_up_naming_the_variable() {
    for (variable, value) in [
        ("API_PORT", "abc"),
        ("INGEST_RATE_LIMIT", "-5"),
        ("DATABASE_URL", "not-a-url"),
        ("API_CORS_ORIGINS", "*"),
        ("REDIS_URL", "localhost"),
        ("SSE_MAX_CLIENTS", "lots"),
    ] {
        let output = run(&["serve"], &[(variable, value)]);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(output.stdout.is_empty(), "no banner for a bad configuration");
    }
}

#[test]
fn token_prints_64_hex_characters_each_time_different() {
    let a = String::from_utf8(run(&["token"], &[]).stdout).unwrap();
    let b = String::from_utf8(run(&["token"], &[]).stdout).unwrap();
    assert_eq!(a.trim().len(), 64);
    assert!(a.trim().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn config_prints_the_effective_configuration_with_secrets_masked() {
    let output = run(
        &["config", "--port", "9123"],
        &[("INGEST_TOKEN", "very-secret-token"), ("DASHBOARD_PASSWORD", "pw-secret"), ("INGEST_RATE_LIMIT", "30")],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("API_PORT=9123"));
    assert!(text.contains("INGEST_RATE_LIMIT=30"));
    assert!(text.contains("DATABASE_URL=sqlite://pump.db"));
    assert!(!text.contains("very-secret-token"));
    assert!(!text.contains("pw-secret"));
}

/// A password holding `@`, and one passed as a `password=` parameter, are masked whole.
#[test]
fn config_masks_every_credential_a_database_or_redis_url_carries() {
    let output = run(
        &["config"],
        &[
            ("DATABASE_URL", "postgres://u:p@ss:w0rd@db.example:5432/pump?password=q-secret&sslmode=require"),
            ("REDIS_URL", "redis://:r3dis-pw@cache.example:6380"),
        ],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("DATABASE_URL=postgres://u:****@db.example:5432/pump?password=****&sslmode=require"),
        "{text}"
    );
    assert!(text.contains("REDIS_URL=redis://:****@cache.example:6380"), "{text}");
    for secret in ["p@ss", "w0rd", "q-secret", "r3dis-pw"] {
        assert!(!text.contains(secret), "{secret} leaks:\n{text}");
    }
}

#[test]
fn the_banner_says_whether_a_token_is_configured_and_never_prints_it() {
    let server = spawn_binary(&[("INGEST_TOKEN", "banner-secret-token")], None);
    assert!(server.banner.contains("Ingest Token: Configured"), "{}", server.banner);
    assert!(!server.banner.contains("banner-secret-token"));
    assert!(server.banner.contains("60 requests per minute"));
    assert!(server.banner.contains("http://127.0.0.1:"));
    assert!(server.banner.contains("CORS Origins:    http://localhost:5173"));
    assert!(server.banner.contains("Database:        sqlite://pump.db"));
    assert!(server.banner.contains("Secret Key:      generated and stored"));
    assert!(!server.banner.contains("WARNING"));
    assert!(server.dir.path().join("pump.db").exists(), "the database file is created");

    let open = spawn_binary(&[("SESSION_TIMEOUT", "120")], None);
    assert!(open.banner.contains("Ingest Token: Not configured (open access)"), "{}", open.banner);
    assert!(open.banner.contains("120 s idle"));
}

#[test]
fn a_public_binding_without_token_or_password_is_warned_about() {
    let server = spawn_binary(&[("API_HOST", "0.0.0.0")], None);
    assert!(server.banner.contains("WARNING: listening on a non-loopback address WITHOUT an ingest token"));
    assert!(server.banner.contains("WITHOUT a dashboard password"));
}

#[test]
fn the_secret_key_is_generated_once_and_reused() {
    let dir = TempDir::new();
    let mut first = spawn_binary(&[], Some(dir));
    assert!(first.banner.contains("generated and stored"));
    first.kill9();
    let dir = std::mem::replace(&mut first.dir, TempDir::new());
    let second = spawn_binary(&[], Some(dir));
    assert!(second.banner.contains("loaded from the database"), "{}", second.banner);
    let configured = spawn_binary(&[("FLASK_SECRET_KEY", "abc")], None);
    assert!(configured.banner.contains("from the environment"));
}

#[test]
fn dot_env_in_the_working_directory_is_loaded_and_the_real_environment_wins() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join(".env"), "INGEST_TOKEN=from-dot-env\nINGEST_RATE_LIMIT=7\nSESSION_TIMEOUT=99\n")
        .unwrap();
    let server = spawn_binary(&[("INGEST_RATE_LIMIT", "11")], Some(dir));
    assert!(server.banner.contains("Ingest Token: Configured"));
    assert!(server.banner.contains("11 requests per minute"), "{}", server.banner);
    assert!(server.banner.contains("99 s idle"));
}

#[tokio::test]
async fn security_events_are_written_to_the_log_file() {
    let server = spawn_binary(&[("INGEST_TOKEN", "tok"), ("INGEST_RATE_LIMIT", "1"), ("LOG_FILE", "server.log")], None);
    let client = reqwest::Client::new();
    let url = server.url("/live/ingest");
    assert_eq!(client.post(&url).json(&bet("a", 1)).send().await.unwrap().status(), 401);
    assert_eq!(
        client.post(&url).header("X-Ingest-Token", "tok").json(&bet("a", 1)).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client.post(&url).header("X-Ingest-Token", "tok").json(&bet("b", 2)).send().await.unwrap().status(),
        429
    );
    client.get(server.url("/healthz")).header("Origin", "http://evil.example").send().await.unwrap();
    let log_path = server.dir.path().join("server.log");
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("CORS") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events: Vec<&str> =
        log.lines().filter(|l| l.contains("401") || l.contains("429") || l.contains("CORS")).collect();
    assert!(
        events.iter().any(|l| l.contains("401") && l.contains("ip=127.0.0.1") && l.contains("path=/live/ingest")),
        "{log}"
    );
    assert!(events.iter().any(|l| l.contains("429") && l.contains("rate limit")), "{log}");
    assert!(events.iter().any(|l| l.contains("CORS") && l.contains("http://evil.example")), "{log}");
    assert!(!log.contains("tok\""), "the token never appears in logs");
}

#[tokio::test]
async fn sighup_reloads_the_ingest_tokens_without_a_restart() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join(".env"), "INGEST_TOKEN=old-token\n").unwrap();
    let server = spawn_binary(&[], Some(dir));
    let client = reqwest::Client::new();
    let post = |token: &str, id: &str| {
        client.post(server.url("/live/ingest")).header("X-Ingest-Token", token).json(&bet(id, 1)).send()
    };
    assert_eq!(post("old-token", "a").await.unwrap().status(), 200);
    assert_eq!(post("new-token", "b").await.unwrap().status(), 401);
    std::fs::write(server.dir.path().join(".env"), "INGEST_TOKEN=old-token,new-token\n").unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut status = 0;
    for _ in 0..50 {
        status = post("new-token", "c").await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(post("old-token", "d").await.unwrap().status(), 200);
}

const VECTOR_SERVER: &str = "564e967b90f03d0153fdcb2d2d1cc5a5057e0df78163611fe3801d6498e681ca";

#[test]
fn verify_prints_the_result_and_the_board() {
    let args = [
        "verify",
        "--server-seed",
        VECTOR_SERVER,
        "--client-seed",
        "zXv1upuFns",
        "--nonce",
        "5663",
        "--difficulty",
        "expert",
    ];
    let output = run(&args, &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("pop point:      13"), "{text}");
    assert!(text.contains("11200.65x"));
    assert_eq!(text.matches("XX").count(), 10);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let json: serde_json::Value = serde_json::from_slice(&run(&json_args, &[]).stdout).unwrap();
    assert_eq!(json["max_pumps"], 12);
    assert_eq!(json["permutation"][0], 16);
    let bad = run(&["verify", "--server-seed", "s", "--client-seed", "c", "--nonce", "0", "--difficulty", "easy"], &[]);
    assert!(!bad.status.success());
}

/// `scan` over SPEC §4.4's range vector (expert, nonces 1–50,000) with `extra` arguments.
fn scan_vector_range(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["scan", "--server-seed", VECTOR_SERVER, "--client-seed", "zXv1upuFns"];
    args.extend(["--start", "1", "--end", "50000", "--difficulty", "expert"]);
    args.extend(extra);
    run(&args, &[])
}

#[test]
fn scan_finds_the_vector_hits_and_summarises_them() {
    let output = scan_vector_range(&["--targets", "11200.65,48536.13", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let nonces: Vec<u64> = json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["max_multiplier"] == 11200.65)
        .map(|h| h["nonce"].as_u64().unwrap())
        .collect();
    assert_eq!(nonces, vec![5663, 9030, 20962, 35134, 41372, 44319]);
    assert_eq!(json["summary"]["counts_by_target"]["11200.65"], 6);
    // The summary describes the whole range, as `POST /runs` does (SPEC §4.5).
    assert_eq!(json["summary"]["count"], 50000);
    assert_eq!(json["summary"]["max_multiplier"], 48536.13);
    assert_eq!(json["summary"]["median_multiplier"], 1.63);
    assert_eq!(json["summary"]["top_max"][0]["nonce"], 45241);
    let text = String::from_utf8(
        run(
            &[
                "scan",
                "--server-seed",
                "a",
                "--client-seed",
                "b",
                "--start",
                "1",
                "--end",
                "1000",
                "--difficulty",
                "easy",
                "--targets",
                "1.02",
            ],
            &[],
        )
        .stdout,
    )
    .unwrap();
    assert!(text.contains("hits in 1000 nonces (easy)"), "{text}");
}

/// `--max-hits` lists the first N hits in nonce order; the summary still counts every one.
#[test]
fn scan_max_hits_caps_the_list_but_not_the_counts() {
    let output = scan_vector_range(&["--targets", "400.02", "--max-hits", "3", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let nonces: Vec<u64> = json["hits"].as_array().unwrap().iter().map(|h| h["nonce"].as_u64().unwrap()).collect();
    assert_eq!(nonces, vec![732, 3178, 3410]);
    assert_eq!(json["hits_truncated"], true);
    assert_eq!(json["summary"]["counts_by_target"]["400.02"], 73);
    assert_eq!(json["summary"]["hits_listed"], 3);
}

/// A scan whose every other nonce is a hit streams them: peak memory stays far below what
/// holding millions of hits takes (the whole `MAX_NONCES` range runs in the same bound).
#[test]
fn scan_streams_millions_of_hits_in_bounded_memory() {
    let dir = TempDir::new();
    // Reaped by `wait4` below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(binary())
        .current_dir(dir.path())
        .env_clear()
        .args(["scan", "--server-seed", "s", "--client-seed", "c", "--start", "1", "--end", "4000000"])
        .args(["--difficulty", "expert", "--targets", "1.00", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let mut hits = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        hits += buf[..n].windows(8).filter(|w| w == b"\"nonce\":").count() as u64;
    }
    let mut status = 0;
    // SAFETY: a plain rusage struct the kernel fills for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    assert_eq!(status, 0, "the scan exits cleanly");
    assert!(hits > 1_500_000, "{hits} hits streamed (40 % of expert rounds pop at once)");
    let peak_mib = usage.ru_maxrss as f64 / 1024.0;
    assert!(peak_mib < 100.0, "peak memory {peak_mib:.1} MiB");
}

/// One source for the Antebot script: the file the dashboard embeds is the README's text.
#[test]
fn the_readme_shows_the_embedded_antebot_script() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).unwrap();
    let script = std::fs::read_to_string(root.join("assets/static/antebot/pump-feed.js")).unwrap();
    assert!(
        readme.contains(&format!("```js\n{script}```")),
        "README's Connect Antebot block differs from pump-feed.js"
    );
}

/// `pump-analyzer demo` starts a demo stream on a running server, says where to watch it, and
/// stops its feed when told (here after 2 s).
#[tokio::test]
async fn demo_feeds_a_running_server_and_stops_its_feed() {
    let server = spawn_binary(&[], None);
    let output = tokio::process::Command::new(binary())
        .args(["demo", "--url", &server.address, "--rate", "20", "--seconds", "2"])
        .env_clear()
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let watch = stdout.lines().find_map(|l| l.strip_prefix("Watch it:")).expect("where to watch it").trim();
    assert!(watch.starts_with(&format!("{}/streams/", server.address)), "{stdout}");
    assert!(stdout.contains("Stopped at nonce"), "{stdout}");
    let id = watch.rsplit('/').next().unwrap();
    let stream: serde_json::Value =
        reqwest::get(server.url(&format!("/live/streams/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(stream["demo"], true);
    let nonce = stream["last_observed_nonce"].as_i64().unwrap();
    assert!((20..=70).contains(&nonce), "about 20 rounds a second for 2 s, got {nonce}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again: serde_json::Value =
        reqwest::get(server.url(&format!("/live/streams/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(again["last_observed_nonce"].as_i64().unwrap(), nonce, "the feed stopped");

    let refused =
        Command::new(binary()).args(["demo", "--url", "https://example.invalid"]).env_clear().output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only http:// URLs"));
}

/// The README's code blocks in the order they appear, by language.
fn readme_blocks(language: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let fence = format!("```{language}\n");
    readme.split(&fence).skip(1).filter_map(|rest| rest.split("```").next().map(str::to_string)).collect()
}

fn simulate_file(script: &str, extra: &[&str]) -> serde_json::Value {
    let dir = TempDir::new();
    let path = dir.path().join("script.js");
    std::fs::write(&path, script).unwrap();
    let mut args = vec!["simulate", path.to_str().unwrap(), "--json"];
    args.extend(extra);
    let output = run(&args, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The README's scripts through `pump-analyzer simulate`: the live feed sends nothing in a
/// simulation, and the martingale stops at its stop-loss, both on the golden pair.
#[test]
fn simulate_runs_the_readme_scripts() {
    let blocks = readme_blocks("js");
    assert_eq!(blocks.len(), 2, "the feed script and the martingale");
    let golden = ["--server-seed", VECTOR_SERVER, "--client-seed", "zXv1upuFns"];
    let mut args = golden.to_vec();
    args.extend(["--max-bets", "20000"]);
    let feed = simulate_file(&blocks[0], &args);
    assert_eq!(feed["stop"]["reason"], "max_bets", "{}", feed["stop"]);
    assert_eq!(feed["stats"]["bets"], 20000);
    assert_eq!(feed["fetch_calls"], 0, "nothing is sent in a simulation");

    let mut args = golden.to_vec();
    args.extend(["--max-bets", "100000", "--balance", "1000"]);
    let martingale = simulate_file(&blocks[1], &args);
    assert_eq!(martingale["stop"]["reason"], "stopped", "{}", martingale["stop"]);
    assert!(martingale["stats"]["profit"].as_f64().unwrap() <= -5.0);
    let last = martingale["logs"].as_array().unwrap().last().unwrap()["text"].as_str().unwrap().to_string();
    assert!(last.starts_with("stop-loss reached at nonce"), "{last}");
    assert_eq!(martingale["logs"].as_array().unwrap().last().unwrap()["color"], "#ff5555");

    // Text output, a random pair, and a Monte Carlo over several pairs.
    let dir = TempDir::new();
    let path = dir.path().join("martingale.js");
    std::fs::write(&path, &blocks[1]).unwrap();
    let text = String::from_utf8(run(&["simulate", path.to_str().unwrap(), "--max-bets", "2000"], &[]).stdout).unwrap();
    assert!(text.contains("seed pair: server ") && text.contains("expected / average"), "{text}");
    let many = simulate_file(&blocks[1], &["--runs", "6", "--max-bets", "2000"]);
    assert_eq!(many["runs"].as_array().unwrap().len(), 6);
    assert!(many["distribution"]["p_profit_positive"].is_number());
}

#[test]
fn simulate_refuses_bad_arguments_and_names_a_syntax_error_line() {
    let dir = TempDir::new();
    let path = dir.path().join("broken.js");
    std::fs::write(&path, "game = 'pump';\nbetSize = ;\n").unwrap();
    let output = run(&["simulate", path.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"), "{}", String::from_utf8_lossy(&output.stderr));
    let output = run(&["simulate", "/nonexistent/script.js"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["simulate", path.to_str().unwrap(), "--max-bets", "2000"], &[("MAX_NONCES", "1000")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("MAX_NONCES"));
}

/// `serve --help` lists every environment variable with its default (one settings table).
#[test]
fn serve_help_lists_every_variable() {
    let text = String::from_utf8(run(&["serve", "--help"], &[]).stdout).unwrap();
    for v in pump_analyzer::config::VARIABLES {
        assert!(text.contains(v.name) && text.contains(v.default), "{} missing:\n{text}", v.name);
    }
}
