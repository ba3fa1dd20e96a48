//! The command line: `serve`, `demo`, `check-config`, `healthcheck`, `backup`, `restore`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;

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
    /// Try it: the appliance with a simulated SDP inside, a service desk page to play the
    /// technician, sample accounts printed on start, and a temporary data dir removed on exit.
    Demo {
        /// Where the customer portal and the console listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Where the service desk page listens (loopback only: it has no sign-in).
        #[arg(long, default_value = "127.0.0.1:8081")]
        desk_bind: String,
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
    /// Download a consistent backup of a running appliance (needs an admin API token).
    Backup {
        /// Where to write the archive. It appears only once it is complete and every checksum
        /// matched; until then the download goes to FILE.partial.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The appliance's base URL. Default: server.bind of the configuration (loopback when it
        /// binds every address).
        #[arg(long)]
        url: Option<String>,
        /// A file holding an admin API token (from POST /api/v1/auth/token).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// An admin API token. Prefer $`DESKBRIDGE_TOKEN` or --token-file: other users can read
        /// command lines.
        #[arg(long, env = "DESKBRIDGE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Configuration file, for the default URL.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create a data dir from a backup archive, after checking every checksum. DIR must be missing
    /// or empty.
    Restore {
        /// The archive written by `deskbridge backup` or downloaded from the console.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The new data dir: the data dir setting of the appliance that will use it.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Demo { bind, desk_bind } => {
            crate::demo::run(&crate::demo::DemoArgs { bind, desk_bind })
        }
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
        Command::Backup {
            out,
            url,
            token_file,
            token,
            config,
        } => backup(&out, url, token_file.as_deref(), token, config.as_deref()),
        Command::Restore { from, data_dir } => restore(&from, &data_dir),
    }
}

/// The appliance's own address from the configuration: server.bind, on loopback when it binds
/// every address.
fn local_base_url(config: Option<&std::path::Path>) -> String {
    let (bind, tls) = Config::load(config).map_or_else(
        |_| (([127, 0, 0, 1], 8080).into(), false),
        |c| {
            (
                c.bind_addr(),
                !c.server.tls_cert_file.as_os_str().is_empty(),
            )
        },
    );
    let host = if bind.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        bind.ip()
    };
    let scheme = if tls { "https" } else { "http" };
    format!(
        "{scheme}://{}",
        std::net::SocketAddr::new(host, bind.port())
    )
}

fn backup(
    out: &std::path::Path,
    url: Option<String>,
    token_file: Option<&std::path::Path>,
    token: Option<String>,
    config: Option<&std::path::Path>,
) -> ExitCode {
    let token = match (token_file, token) {
        (Some(file), _) => match std::fs::read_to_string(file) {
            Ok(token) => token.trim().to_owned(),
            Err(e) => {
                eprintln!("deskbridge backup: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        (None, Some(token)) => token.trim().to_owned(),
        (None, None) => String::new(),
    };
    if token.is_empty() {
        eprintln!(
            "deskbridge backup: an admin API token is needed: --token-file FILE or DESKBRIDGE_TOKEN"
        );
        return ExitCode::FAILURE;
    }
    let url = url.unwrap_or_else(|| local_base_url(config));
    match crate::backup::client::backup(&url, &token, out) {
        Ok(manifest) => {
            eprintln!(
                "deskbridge backup: {} written ({} entries, schema version {})",
                out.display(),
                manifest.entries.len(),
                manifest.schema_version
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("deskbridge backup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn restore(from: &std::path::Path, data_dir: &std::path::Path) -> ExitCode {
    let size = std::fs::metadata(from).map(|m| m.len()).ok();
    let mut progress = crate::backup::Progress::new("restore: checking", size);
    match crate::backup::restore::restore(from, data_dir, &mut progress) {
        Ok(restored) => {
            eprintln!(
                "deskbridge restore: {} restored from the backup of {} ({} records, {} files); \
                 start deskbridge with storage.data_dir = {:?}",
                data_dir.display(),
                restored
                    .manifest
                    .created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                restored.records,
                restored.manifest.entries.len() - 1,
                data_dir.display().to_string()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("deskbridge restore: {e}");
            ExitCode::FAILURE
        }
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
    crate::app::init_tracing(&config);
    let result = actix_web::rt::System::new().block_on(async move {
        let running = crate::app::start(config).await?;
        crate::app::shutdown_signal().await;
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

fn healthcheck(url: Option<String>) -> ExitCode {
    // The derived URL is this host's own listener, whose certificate names its public host: the
    // probe sends nothing secret, so it does not check the name.
    let local = url.is_none();
    let url = url.unwrap_or_else(|| format!("{}/healthz", local_base_url(None)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .tls_danger_accept_invalid_certs(local)
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
