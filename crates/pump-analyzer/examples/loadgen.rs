//! Ingest load generator: posts unique bets over N keep-alive connections for a fixed time and
//! prints requests/s, bets/s, p50/p99 latency and the error count.
//!
//! `cargo run --release --example loadgen -- --url http://127.0.0.1:8000 --connections 16 --seconds 10 --batch 1`
//! (`--path /healthz` posts elsewhere: the HTTP stack alone, for comparison; `--seed-pairs K` has
//! the connections share K seed pairs, one per connection by default; `--heartbeats` posts
//! heartbeats instead of bets)
//! (or `scripts/bench-ingest.sh`, which also starts a server on a scratch database).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::io::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    connections: usize,
    seconds: u64,
    batch: usize,
    token: Option<String>,
    heartbeats: bool,
    /// How many seed pairs (streams) the connections post to, 1..=connections: connection `i`
    /// uses pair `i % seed_pairs`. `--seed-pairs 0` or none: one pair per connection.
    seed_pairs: usize,
    /// Where to post (another path measures the HTTP stack without the ingest behind it).
    path: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:8000".into(),
        connections: 16,
        seconds: 10,
        batch: 1,
        token: None,
        heartbeats: false,
        seed_pairs: 0,
        path: "/live/ingest".into(),
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
            "--seed-pairs" => args.seed_pairs = value().parse().expect("--seed-pairs N"),
            "--path" => args.path = value(),
            other => panic!("unknown flag {other}; see the file's header"),
        }
    }
    args.seed_pairs = if args.seed_pairs == 0 { args.connections } else { args.seed_pairs.min(args.connections) };
    args
}

fn body(args: &Args, run: &str, worker: usize, seq: u64) -> String {
    let (batch, connections, pairs) = (args.batch, args.connections, args.seed_pairs);
    // The pair this connection posts to; connections sharing a pair take turns with its nonces,
    // so every bet of a stream has a nonce of its own, as from a real bot.
    let pair = worker % pairs;
    let (stride, offset) = if pairs == connections { (1, 0) } else { (connections as u64, worker as u64) };
    let one = |i: usize| {
        let nonce = (seq * batch as u64 + i as u64) * stride + offset + 1;
        if args.heartbeats {
            format!(
                r#"{{"type":"heartbeat","nonce":{nonce},"roundResult":1.63,"clientSeed":"load-{run}-{pair}","serverSeedHashed":"load-{run}"}}"#
            )
        } else {
            format!(
                r#"{{"id":"{run}-{worker}-{nonce}","nonce":{nonce},"amount":0.01,"payout":0,"difficulty":"expert","clientSeed":"load-{run}-{pair}","serverSeedHashed":"load-{run}","roundResult":1.63,"roundTarget":1066.73,"dateTime":"2026-11-23T12:00:00Z"}}"#
            )
        }
    };
    if batch == 1 { one(0) } else { format!("[{}]", (0..batch).map(one).collect::<Vec<_>>().join(",")) }
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// One keep-alive connection posting requests one after another. HTTP/1.1 is written and read
/// by hand rather than through an HTTP client: the generator shares the machine's cores with the
/// server it measures, so it should cost the server as little as possible, and a request here is
/// one `write` and (usually) one `read`, with no per-request header map, task or channel.
async fn worker(args: Arc<Args>, run: Arc<String>, id: usize, stop: Arc<AtomicBool>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let authority = args.url.strip_prefix("http://").expect("--url must start with http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).await.expect("connect to the server");
    stream.set_nodelay(true).ok();
    let token = args.token.as_ref().map(|t| format!("X-Ingest-Token: {t}\r\n")).unwrap_or_default();
    let mut request = Vec::with_capacity(1024);
    let mut response = Response::default();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = body(&args, &run, id, seq);
        seq += 1;
        request.clear();
        write!(
            request,
            "POST {} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{token}Content-Length: {}\r\n\r\n",
            args.path,
            body.len()
        )
        .unwrap();
        request.extend_from_slice(body.as_bytes());
        let started = Instant::now();
        let status = match stream.write_all(&request).await {
            Ok(()) => response.read(&mut stream).await,
            Err(e) => Err(e),
        };
        match status {
            Ok(status) => {
                stats.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if status != 200 {
                    stats.errors += 1;
                }
            }
            Err(e) => {
                eprintln!("connection {id}: {e}");
                stats.errors += 1;
                break;
            }
        }
    }
    stats
}

/// Reads HTTP/1.1 responses off one connection (Content-Length or chunked bodies).
#[derive(Default)]
struct Response {
    buf: Vec<u8>,
}

impl Response {
    /// Reads one whole response and returns its status code.
    async fn read(&mut self, stream: &mut TcpStream) -> std::io::Result<u16> {
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill(stream).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| invalid("response head is not UTF-8"))?;
        let status: u16 =
            head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("no status code"))?;
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim().to_ascii_lowercase())
            })
        };
        let (length, chunked) = (header("content-length"), header("transfer-encoding"));
        self.buf.drain(..head_end);
        if chunked.is_some_and(|t| t.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(at) = find(&self.buf, b"\r\n") {
                        break at;
                    }
                    self.fill(stream).await?;
                };
                let size = std::str::from_utf8(&self.buf[..line_end])
                    .ok()
                    .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok());
                let size = size.ok_or_else(|| invalid("bad chunk size"))?;
                // The chunk, its CRLF (for the last chunk: the empty trailer's CRLF).
                let total = line_end + 2 + size + 2;
                while self.buf.len() < total {
                    self.fill(stream).await?;
                }
                self.buf.drain(..total);
                if size == 0 {
                    return Ok(status);
                }
            }
        }
        let length: usize = length.and_then(|l| l.parse().ok()).unwrap_or(0);
        while self.buf.len() < length {
            self.fill(stream).await?;
        }
        self.buf.drain(..length);
        Ok(status)
    }

    async fn fill(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
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
            "connections={} seed_pairs={} batch={} kind={} seconds={:.1}",
            args.connections,
            args.seed_pairs,
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
        if let Some((user, system)) = own_cpu_seconds() {
            println!(
                "generator_cpu_us per_request={:.0} (user {:.0}, system {:.0})",
                (user + system) * 1e6 / requests.max(1.0),
                user * 1e6 / requests.max(1.0),
                system * 1e6 / requests.max(1.0)
            );
        }
    });
}

/// This process's user and system CPU seconds (Linux, from /proc; clock ticks at the usual 100 Hz):
/// the generator's share of the machine it shares with the server.
fn own_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((ticks(11)?, ticks(12)?))
}
