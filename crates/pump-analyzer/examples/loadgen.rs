//! Ingest load generator: posts unique bets over N keep-alive connections for a fixed time and
//! prints requests/s, bets/s, p50/p99 latency and the error count.
//!
//! `cargo run --release --example loadgen -- --url http://127.0.0.1:8000 --connections 16 --seconds 10 --batch 1`
//! (or `scripts/bench-ingest.sh`, which also starts a server on a scratch database).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Args {
    url: String,
    connections: usize,
    seconds: u64,
    batch: usize,
    token: Option<String>,
    heartbeats: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:8000".into(),
        connections: 16,
        seconds: 10,
        batch: 1,
        token: None,
        heartbeats: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--connections" | "-c" => args.connections = value().parse().expect("--connections N"),
            "--seconds" | "-d" => args.seconds = value().parse().expect("--seconds N"),
            "--batch" | "-b" => args.batch = value().parse().expect("--batch N"),
            "--token" => args.token = Some(value()),
            "--heartbeats" => args.heartbeats = true,
            other => panic!("unknown flag {other}; see the file's header"),
        }
    }
    args
}

fn body(run: &str, worker: usize, seq: u64, batch: usize, heartbeats: bool) -> Bytes {
    let one = |i: usize| {
        let nonce = seq * batch as u64 + i as u64 + 1;
        if heartbeats {
            format!(
                r#"{{"type":"heartbeat","nonce":{nonce},"roundResult":1.63,"clientSeed":"load-{run}-{worker}","serverSeedHashed":"load-{run}"}}"#
            )
        } else {
            format!(
                r#"{{"id":"{run}-{worker}-{nonce}","nonce":{nonce},"amount":0.01,"payout":0,"difficulty":"expert","clientSeed":"load-{run}-{worker}","serverSeedHashed":"load-{run}","roundResult":1.63,"roundTarget":1066.73,"dateTime":"2026-11-23T12:00:00Z"}}"#
            )
        }
    };
    if batch == 1 {
        Bytes::from(one(0))
    } else {
        Bytes::from(format!("[{}]", (0..batch).map(one).collect::<Vec<_>>().join(",")))
    }
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn worker(args: Arc<Args>, run: Arc<String>, id: usize, stop: Arc<AtomicBool>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let uri: hyper::Uri = format!("{}/live/ingest", args.url).parse().expect("--url");
    let authority = uri.authority().expect("--url needs host:port").clone();
    let stream = TcpStream::connect(authority.as_str()).await.expect("connect to the server");
    stream.set_nodelay(true).ok();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut request = hyper::Request::post(uri.clone())
            .header("host", authority.as_str())
            .header("content-type", "application/json");
        if let Some(token) = &args.token {
            request = request.header("x-ingest-token", token);
        }
        let request = request.body(Full::new(body(&run, id, seq, args.batch, args.heartbeats))).unwrap();
        seq += 1;
        let started = Instant::now();
        match sender.send_request(request).await {
            Ok(response) => {
                let ok = response.status() == 200;
                let _ = response.into_body().collect().await;
                stats.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if !ok {
                    stats.errors += 1;
                }
            }
            Err(_) => {
                stats.errors += 1;
                break;
            }
        }
    }
    stats
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

fn main() {
    let args = Arc::new(parse_args());
    // One thread, no work stealing: the generator shares the cores with the server it measures.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let run = Arc::new(format!(
            "{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> =
            (0..args.connections).map(|id| tokio::spawn(worker(args.clone(), run.clone(), id, stop.clone()))).collect();
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let stats = task.await.unwrap();
            latencies.extend(stats.latencies_us);
            errors += stats.errors;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let requests = latencies.len() as f64;
        println!(
            "connections={} batch={} kind={} seconds={:.1}",
            args.connections,
            args.batch,
            if args.heartbeats { "heartbeat" } else { "bet" },
            elapsed
        );
        println!("requests={requests}");
        println!("requests/s={:.0}", requests / elapsed);
        println!("bets/s={:.0}", requests * args.batch as f64 / elapsed);
        println!(
            "latency_ms p50={:.2} p99={:.2} max={:.2}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0)
        );
        println!("errors={errors}");
    });
}
