//! The command line: `serve`, `check-config`, `healthcheck`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "deskbridge",
    version,
    about = "Customer tickets bridged to ManageEngine ServiceDesk Plus"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance.
    Serve {
        /// Configuration file (default: $`DESKBRIDGE_CONFIG`, else /etc/deskbridge/deskbridge.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the merged configuration with secrets redacted; exit 1 with the reason when invalid.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Exit 0 when /healthz answers 200 (for container health checks).
    Healthcheck {
        /// Default: /healthz on the configured server.bind (loopback when it binds every address).
        #[arg(long)]
        url: Option<String>,
    },
}

pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::CheckConfig { config } => match Config::load(config.as_deref()) {
            Ok(config) => {
                print!("{}", config.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("deskbridge: invalid configuration: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Healthcheck { url } => healthcheck(url),
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(path: Option<&std::path::Path>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("deskbridge: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(&config);
    let result = actix_web::rt::System::new().block_on(async move {
        let running = crate::app::start(config).await?;
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "deskbridge could not start");
            eprintln!("deskbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works on Unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn healthcheck(url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let bind =
            Config::load(None).map_or_else(|_| ([127, 0, 0, 1], 8080).into(), |c| c.bind_addr());
        let host = if bind.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            bind.ip()
        };
        format!(
            "http://{}/healthz",
            std::net::SocketAddr::new(host, bind.port())
        )
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        client.get(&url).send().await.map(|r| r.status())
    });
    match status {
        Ok(s) if s.is_success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("deskbridge healthcheck: {url} answered {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("deskbridge healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
