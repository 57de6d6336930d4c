//! The `pump-analyzer` command: `serve` (the default), `verify`, `scan`, `simulate`, `demo`, `token`, `config`.

use std::process::ExitCode;

// The ingest path allocates many small, short-lived objects (JSON values, strings, futures);
// mimalloc's thread-local free lists handle that markedly better than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use pump_analyzer::Application;
use pump_analyzer::config::{DatabaseUrl, Overrides, Settings};

#[derive(Parser)]
#[command(name = "pump-analyzer", version, about = "Live analyzer and provably-fair verifier for Stake's Pump")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    #[command(after_help = pump_analyzer::config::variables_help())]
    Serve(ServeArgs),
    /// Print a fresh random ingest token (32 bytes, hex).
    Token,
    /// Print the effective configuration, secrets masked.
    Config(ServeArgs),
    /// Verify one nonce: result, permutation and the board.
    Verify {
        #[arg(long)]
        server_seed: String,
        #[arg(long)]
        client_seed: String,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        nonce: u64,
        #[arg(long, value_parser = parse_difficulty)]
        difficulty: pump_engine::Difficulty,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run an Antebot script against the provably-fair engine, offline (SPEC §9).
    Simulate {
        /// The script file.
        script: std::path::PathBuf,
        /// Server seed (unset: a random pair is drawn and printed).
        #[arg(long)]
        server_seed: Option<String>,
        /// Client seed (unset: random).
        #[arg(long)]
        client_seed: Option<String>,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        start_nonce: u64,
        /// Bets at most (at most MAX_NONCES).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        max_bets: u64,
        /// Starting balance.
        #[arg(long, default_value_t = 1000.0)]
        balance: f64,
        /// Monte Carlo: this many independent random seed pairs, on every core.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=pump_analyzer::sim::MAX_RUNS))]
        runs: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a demo stream on a running server (fed live from the engine) and stop it on Ctrl-C.
    Demo {
        /// The server's URL (default: http://API_HOST:API_PORT from the environment or .env).
        #[arg(long)]
        url: Option<String>,
        /// Rounds per second (1-1000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        rate: u32,
        /// Stop after this many seconds instead of waiting for Ctrl-C.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Scan a nonce range for target multipliers on all cores.
    Scan {
        #[arg(long)]
        server_seed: String,
        #[arg(long)]
        client_seed: String,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        start: u64,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        end: u64,
        #[arg(long, value_parser = parse_difficulty)]
        difficulty: pump_engine::Difficulty,
        /// Comma-separated multipliers, e.g. 400.02,11200.65
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<f64>,
        /// Print JSON instead of text (no progress bar).
        #[arg(long)]
        json: bool,
        /// List at most N hits (the summary still counts every one).
        #[arg(long, value_name = "N")]
        max_hits: Option<u64>,
    },
}

fn parse_difficulty(raw: &str) -> Result<pump_engine::Difficulty, String> {
    raw.to_ascii_lowercase().parse().map_err(|e: pump_engine::ParseDifficultyError| e.to_string())
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Bind address (overrides API_HOST).
    #[arg(long)]
    host: Option<String>,
    /// Bind port (overrides API_PORT).
    #[arg(long)]
    port: Option<String>,
    /// Database URL (overrides DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides { host: self.host.clone(), port: self.port.clone(), database_url: self.database_url.clone() }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Verify { server_seed, client_seed, nonce, difficulty, json } => {
            print!("{}", pump_analyzer::cli::verify(&server_seed, &client_seed, nonce, difficulty, json));
            ExitCode::SUCCESS
        }
        Command::Scan { server_seed, client_seed, start, end, difficulty, targets, json, max_hits } => {
            if end < start {
                eprintln!("error: --end must be ≥ --start");
                return ExitCode::from(2);
            }
            if targets.iter().any(|t| !t.is_finite() || *t <= 0.0) {
                eprintln!("error: --targets must be positive multipliers such as 400.02,11200.65");
                return ExitCode::from(2);
            }
            let args = pump_analyzer::cli::ScanArgs {
                server_seed,
                client_seed,
                start,
                end,
                difficulty,
                targets,
                json,
                max_hits,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout());
            match pump_analyzer::cli::scan(&args, &mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { url, rate, seconds } => {
            let url = match url {
                Some(url) => url,
                None => match Settings::from_process(&Overrides::default()) {
                    Ok(s) => {
                        let host = if s.host.is_unspecified() { "127.0.0.1".to_string() } else { s.host.to_string() };
                        let host = if host.contains(':') { format!("[{host}]") } else { host };
                        format!("http://{host}:{}", s.port)
                    }
                    Err(e) => return config_error(&e),
                },
            };
            let args = pump_analyzer::demo_client::DemoArgs { url, rate, seconds };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(pump_analyzer::demo_client::run(&args)))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Simulate { script, server_seed, client_seed, start_nonce, max_bets, balance, runs, json } => {
            let settings = match Settings::from_process(&Overrides::default()) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            if max_bets > settings.max_nonces {
                eprintln!("error: --max-bets must be at most MAX_NONCES ({})", settings.max_nonces);
                return ExitCode::from(2);
            }
            if !balance.is_finite() || balance < 0.0 {
                eprintln!("error: --balance must be a number ≥ 0");
                return ExitCode::from(2);
            }
            let source = match std::fs::read_to_string(&script) {
                Ok(source) => source,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", script.display());
                    return ExitCode::from(2);
                }
            };
            let config = pump_analyzer::sim::SimConfig {
                script: source,
                server_seed,
                client_seed,
                start_nonce,
                max_bets,
                balance,
                time_limit: std::time::Duration::from_secs(settings.sim_time_limit),
            };
            match pump_analyzer::sim::report::run(&config, runs, json) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token => {
            println!("{}", pump_analyzer::security::random_hex(32));
            ExitCode::SUCCESS
        }
        Command::Config(args) => match Settings::from_process(&args.overrides()) {
            Ok(settings) => {
                print!("{}", settings.describe());
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Command::Serve(args) => {
            let settings = match Settings::from_process(&args.overrides()) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if let Some(workers) = runtime_workers(&settings) {
                runtime.worker_threads(workers);
            }
            let runtime = runtime.enable_all().build();
            match runtime {
                Ok(rt) => rt.block_on(serve(settings)),
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Async worker threads, when we choose them. With SQLite every write runs on the store's own
/// writer thread, the busiest thread under ingest load, so the runtime gets one core fewer than
/// the machine has: workers and the writer contending for the same cores cost more CPU per
/// request (docs/performance-history.md). `TOKIO_WORKER_THREADS`, when set, decides as tokio
/// documents.
fn runtime_workers(settings: &Settings) -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() || !matches!(settings.database, DatabaseUrl::Sqlite(_)) {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(cores.saturating_sub(1).max(1))
}

fn config_error(e: &pump_analyzer::config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    eprintln!("Fix {} in the environment or in .env and start again.", e.variable);
    ExitCode::from(2)
}

async fn serve(settings: Settings) -> ExitCode {
    if let Err(e) = pump_analyzer::telemetry::init(&settings) {
        eprintln!("error: cannot open LOG_FILE: {e}");
        return ExitCode::from(2);
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", app.banner());
    spawn_token_reload(app.state().clone());
    tracing::info!(address = %app.address(), "listening");
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP re-reads `INGEST_TOKEN` from `./.env` (falling back to the process environment) and
/// swaps the accepted tokens without a restart (SPEC §2.1).
fn spawn_token_reload(state: pump_analyzer::http::AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let from_file = dotenvy::from_path_iter(".env")
                .ok()
                .and_then(|iter| iter.flatten().find(|(k, _)| k == "INGEST_TOKEN").map(|(_, v)| v));
            let raw = from_file.or_else(|| std::env::var("INGEST_TOKEN").ok()).unwrap_or_default();
            let tokens = pump_analyzer::config::split_list(&raw);
            state.tokens.replace(&tokens);
            tracing::warn!(target: "security", tokens = tokens.len(), "ingest tokens reloaded on SIGHUP");
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
