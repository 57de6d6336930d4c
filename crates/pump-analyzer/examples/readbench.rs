//! Read-side benchmarks of the streams issue, against a running server with INGEST_RATE_LIMIT=0:
//!
//! - `sse`: 16 connections ingest single bets at full speed while one client listens on
//!   `/live/events`; reports the delay from each `200` to the bet's arrival over SSE (p50/p99/max).
//! - `reads`: loads 1,000,000 bets into one stream and 10,000 one-bet streams, then times list,
//!   detail, bets page and tail requests (p50/p99).
//!
//! - `verify`: loads 300,000 bets into one stream, reveals its seed and times their verification.
//!
//! `scripts/bench-read.sh sse|reads|verify` starts a release server on a scratch database and runs this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<28} n={:<7} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn bet(id: &str, nonce: u64, server: &str, client: &str, result: f64) -> String {
    format!(
        r#"{{"id":"{id}","nonce":{nonce},"amount":0.01,"payout":0,"difficulty":"expert","clientSeed":"{client}","serverSeedHashed":"{server}","roundResult":{result}}}"#
    )
}

async fn sse(url: String, connections: usize, seconds: u64) {
    let client = reqwest::Client::new();
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let response = client.get(format!("{url}/live/events")).send().await.expect("SSE connects");
    let listener = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:"))
                        && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                        && let Some(id) = v["antebot_bet_id"].as_str()
                    {
                        arrived.lock().unwrap().insert(id.to_string(), now);
                    }
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..connections {
        let (client, url, acked) = (reqwest::Client::new(), url.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let id = format!("sse-{w}-{n}");
                let body = bet(&id, n, "sse-bench", &format!("c{w}"), 1.63);
                let ok =
                    client.post(format!("{url}/live/ingest")).body(body).send().await.is_ok_and(|r| r.status() == 200);
                if ok {
                    acked.lock().unwrap().insert(id, Instant::now());
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    listener.abort();
    let acked = acked.lock().unwrap();
    let arrived = arrived.lock().unwrap();
    let missing = acked.keys().filter(|k| !arrived.contains_key(*k)).count();
    let delays: Vec<f64> = acked
        .iter()
        .filter_map(|(id, ack)| arrived.get(id).map(|a| a.saturating_duration_since(*ack).as_secs_f64() * 1000.0))
        .collect();
    println!(
        "{} bets acknowledged in {seconds} s over {connections} connections; {missing} never arrived over SSE",
        acked.len()
    );
    report("200 → SSE arrival", delays);
}

async fn post(client: &reqwest::Client, url: &str, body: String) {
    let r = client.post(format!("{url}/live/ingest")).body(body).send().await.expect("ingest");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// Loads `bets` bets into one stream, reveals its seed and times the verification.
async fn verify(url: String, bets: u64) {
    let client = reqwest::Client::new();
    load_big(&client, &url, bets).await;
    let list: Value = client.get(format!("{url}/live/streams?limit=1")).send().await.unwrap().json().await.unwrap();
    let big = list["streams"][0]["id"].as_str().unwrap().to_string();
    reveal(&url, &big).await;
}

/// One big stream, multipliers spread over the expert table so distance_prev has work to do.
async fn load_big(client: &reqwest::Client, url: &str, bets: u64) {
    let table = [1.0, 1.63, 2.8, 4.95, 9.08, 17.34, 34.68, 73.21, 164.72, 400.02, 1066.73];
    let chunks: Vec<u64> = (0..bets.div_ceil(1000)).collect();
    futures_util::stream::iter(chunks)
        .for_each_concurrent(4, |c| {
            let (client, url) = (client.clone(), url.to_string());
            async move {
                let items: Vec<String> = (c * 1000 + 1..=((c + 1) * 1000).min(bets))
                    .map(|n| {
                        bet(&format!("big-{n}"), n, &big_hash(), "big-client", table[(n * 2654435761 % 11) as usize])
                    })
                    .collect();
                post(&client, &url, format!("[{}]", items.join(","))).await;
            }
        })
        .await;
}

async fn reads(url: String, bets: u64, streams: u64) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    load_big(&client, &url, bets).await;
    for c in 0..streams.div_ceil(1000) {
        let items: Vec<String> = (c * 1000..((c + 1) * 1000).min(streams))
            .map(|s| bet(&format!("small-{s}"), 1, &format!("hash-{s}"), "small", 1.63))
            .collect();
        post(&client, &url, format!("[{}]", items.join(","))).await;
    }
    println!(
        "loaded {bets} bets in one stream and {streams} small streams in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let list: Value = client.get(format!("{url}/live/streams?limit=100")).send().await.unwrap().json().await.unwrap();
    let big = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&Value::Null))
        .find(|s| s["client_seed"] == "big-client")
        .cloned();
    let big = match big {
        Some(s) if !s.is_null() => s["id"].as_str().unwrap().to_string(),
        _ => {
            // The big stream is older than the small ones: find it by paging.
            let mut offset = 0;
            loop {
                let page: Value = client
                    .get(format!("{url}/live/streams?limit=100&offset={offset}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if let Some(s) = page["streams"].as_array().unwrap().iter().find(|s| s["client_seed"] == "big-client") {
                    break s["id"].as_str().unwrap().to_string();
                }
                offset += 100;
            }
        }
    };
    reveal(&url, &big).await;
    let tail_from = bets.saturating_sub(500);
    let cases = [
        ("GET /live/streams", format!("{url}/live/streams")),
        ("GET /live/streams/{id}", format!("{url}/live/streams/{big}")),
        ("GET …/bets (nonce_asc)", format!("{url}/live/streams/{big}/bets")),
        ("GET …/bets (id_desc)", format!("{url}/live/streams/{big}/bets?order=id_desc")),
        ("GET …/bets?min_multiplier=400", format!("{url}/live/streams/{big}/bets?min_multiplier=400")),
        ("GET …/bets?min_multiplier=1066", format!("{url}/live/streams/{big}/bets?min_multiplier=1066&order=id_desc")),
        (
            "GET …/bets?min=1066&hard (none)",
            format!("{url}/live/streams/{big}/bets?min_multiplier=1066&difficulty=hard"),
        ),
        ("GET …/tail", format!("{url}/live/streams/{big}/tail?since_id={tail_from}&limit=100")),
    ];
    for (name, target) in cases {
        let mut ms = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            let r = client.get(&target).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        report(name, ms);
    }
    // Export of the big stream (twice): streamed, so the server's memory should not grow with it.
    for _ in 0..2 {
        export(&client, &url, &big).await;
    }
}

async fn export(client: &reqwest::Client, url: &str, big: &str) {
    let before = server_rss_kib();
    let started = Instant::now();
    let response = client.get(format!("{url}/live/streams/{big}/export.csv")).send().await.unwrap();
    let mut stream = response.bytes_stream();
    let (mut bytes, mut lines, mut peak) = (0usize, 0usize, before);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        peak = peak.max(server_rss_kib());
    }
    println!(
        "export.csv: {lines} lines, {:.1} MiB in {:.1} s; server RSS {before} KiB before, peak {peak} KiB during",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
}

/// Resident memory of the server (`BENCH_PID`), in KiB; 0 when unknown.
fn server_rss_kib() -> u64 {
    let Ok(pid) = std::env::var("BENCH_PID") else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Holds `n` idle SSE connections on `/live/events` and reports the server's memory per connection.
async fn idle(url: String, n: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://").to_string();
    let before = server_rss_kib();
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        let request = format!("GET /live/events HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 512];
        let read = stream.read(&mut head).await.unwrap();
        assert!(head[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..read]));
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server_rss_kib();
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    let clients = metrics.lines().find(|l| l.starts_with("pump_sse_clients ")).unwrap_or("?").to_string();
    println!(
        "{n} idle SSE connections opened in {:.1} s ({clients}); server RSS {before} → {after} KiB: {:.1} KiB per connection",
        started.elapsed().as_secs_f64(),
        (after.saturating_sub(before)) as f64 / n as f64
    );
    drop(held);
}

const BIG_SEED: &str = "readbench-server-seed";

fn big_hash() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(BIG_SEED.as_bytes()))
}

/// Reveals the big stream's seed and measures ingest and list latency while its bets are verified.
async fn reveal(url: &str, big: &str) {
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let token: Value = browser.get(format!("{url}/api/session/csrf-token")).send().await.unwrap().json().await.unwrap();
    let token = token["csrf_token"].as_str().unwrap().to_string();
    let started = Instant::now();
    let reveal = {
        let (browser, url) = (browser.clone(), url.to_string());
        tokio::spawn(async move {
            browser
                .post(format!("{url}/live/seeds"))
                .header("X-CSRF-Token", token)
                .json(&serde_json::json!({"server_seed": BIG_SEED}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let client = reqwest::Client::new();
    let (mut ingest, mut list) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    loop {
        n += 1;
        let t = Instant::now();
        post(&client, url, bet(&format!("during-{n}"), n, "during-hash", "during", 1.63)).await;
        ingest.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let _ = client.get(format!("{url}/live/streams")).send().await.unwrap().bytes().await;
        list.push(t.elapsed().as_secs_f64() * 1000.0);
        let detail: Value = client.get(format!("{url}/live/streams/{big}")).send().await.unwrap().json().await.unwrap();
        if detail["verified"]["pending"] == 0 && reveal.is_finished() {
            println!(
                "seed reveal: {} bets verified in {:.2} s (reveal answered {})",
                detail["verified"]["checked"],
                started.elapsed().as_secs_f64(),
                reveal.await.unwrap()
            );
            break;
        }
    }
    report("ingest during verification", ingest);
    report("list during verification", list);
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sse".into());
    let url = std::env::var("BENCH_URL").unwrap_or_else(|_| "http://127.0.0.1:18080".into());
    match mode.as_str() {
        "sse" => sse(url, 16, args.next().and_then(|s| s.parse().ok()).unwrap_or(10)).await,
        "reads" => {
            let bets = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
            let streams = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
            reads(url, bets, streams).await
        }
        "verify" => verify(url, args.next().and_then(|s| s.parse().ok()).unwrap_or(300_000)).await,
        "idle" => idle(url, args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000)).await,
        other => panic!("unknown mode {other}: sse [seconds] | reads [bets] [streams] | idle [connections]"),
    }
}
