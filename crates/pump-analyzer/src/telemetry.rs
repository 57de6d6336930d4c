//! Logging: text or JSON to stdout, and the same lines appended to `LOG_FILE` when set, so the
//! seed's `tail -f server.log | grep -E "(401|429|CORS)"` works.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
pub fn init(settings: &Settings) -> std::io::Result<()> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stdout = match settings.log_format {
        LogFormat::Text => fmt::layer().with_target(true).boxed(),
        LogFormat::Json => fmt::layer().json().with_target(true).boxed(),
    };
    let file = match &settings.log_file {
        None => None,
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let layer = fmt::layer().with_ansi(false).with_target(true).with_writer(Mutex::new(file));
            Some(match settings.log_format {
                LogFormat::Text => layer.boxed(),
                LogFormat::Json => layer.json().boxed(),
            })
        }
    };
    let _ = tracing_subscriber::registry()
        .with(stdout.with_filter(filter()))
        .with(file.map(|l| l.with_filter(filter())))
        .try_init();
    Ok(())
}
