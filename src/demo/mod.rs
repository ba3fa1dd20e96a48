//! `deskbridge demo`: the appliance on a temporary data dir, connected to a simulated `ServiceDesk`
//! Plus inside the process (the `fake-sdp` crate the tests use, at its default strictness), with a
//! service desk page where one plays the technician. `serve` never starts any of this.
//!
//! Everything reaches the appliance the way it would in production: the simulated SDP over its
//! REST API on 127.0.0.1, the sample accounts through the admin API, and each change made on the
//! service desk page through the webhook an SDP trigger would call.

mod desk;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use fake_sdp::{FakeSdp, Profile};
use serde_json::{Value, json};

use crate::config::{Config, Secret};

/// Where the demo listens: the portal, and the service desk page (loopback only: it has no
/// sign-in, whoever reaches it acts as a technician).
#[derive(Debug, Clone)]
pub(crate) struct DemoArgs {
    pub bind: String,
    pub desk_bind: String,
}

/// One sample account, printed on start.
struct Account {
    role: &'static str,
    email: &'static str,
    name: &'static str,
    password: String,
}

const ORGANIZATION: &str = "Acme Cloud";
const ADMIN_EMAIL: &str = "admin@deskbridge.demo";

pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    let desk_addr = match args.desk_bind.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => addr,
        _ => {
            eprintln!(
                "deskbridge demo: --desk-bind must be a loopback address and port such as \
                 127.0.0.1:8081 (the service desk page has no sign-in)"
            );
            return ExitCode::FAILURE;
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix("deskbridge-demo-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("deskbridge demo: no temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = demo_config(dir.path(), &args.bind);
    crate::app::init_tracing(&config);
    let result = actix_web::rt::System::new().block_on(demo(config, desk_addr));
    drop(dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deskbridge demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo_config(dir: &std::path::Path, bind: &str) -> Config {
    let mut config = Config::default();
    bind.clone_into(&mut config.server.bind);
    config.storage.data_dir = dir.join("data");
    config.storage.cache_mb = 32;
    ADMIN_EMAIL.clone_into(&mut config.bootstrap.admin_email);
    config.bootstrap.admin_name = "Demo admin".into();
    config.bootstrap.admin_password = Secret::new(password());
    config.sdp.webhook_secret = Secret::new(crate::auth::new_secret(""));
    // The page shows what happens; the log keeps to warnings.
    config.log.level = "warn".into();
    config
}

async fn demo(mut config: Config, desk_addr: SocketAddr) -> anyhow::Result<()> {
    let sdp = Arc::new(FakeSdp::start(Profile::OnPrem).await);
    config.sdp.base_url = sdp.base_url();
    config.sdp.api_key = Secret::new(sdp.api_key());
    let admin_password = config.bootstrap.admin_password.expose().to_owned();
    let hook_secret = config.sdp.webhook_secret.expose().to_owned();
    let running = crate::app::start(config).await?;
    let portal = format!("http://{}", local(running.addr));
    let accounts = seed(&portal, admin_password).await?;
    let hook = format!("{portal}/api/v1/hooks/sdp?secret={hook_secret}");
    let (desk, desk_url) = desk::start(Arc::clone(&sdp), desk_addr, hook, portal.clone())?;
    print_banner(&portal, &desk_url, &accounts);
    crate::app::shutdown_signal().await;
    desk.stop(false).await;
    running.stop().await;
    if let Ok(sdp) = Arc::try_unwrap(sdp) {
        sdp.stop().await;
    }
    Ok(())
}

/// A fresh password for a sample account: the portal may be bound beyond loopback.
fn password() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("demo-{}", hex::encode(bytes))
}

/// The address to print: loopback when the portal binds every address.
fn local(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Creates the organisation, its two customers and a first ticket through the admin and ticket
/// API, as an operator and a customer would.
async fn seed(portal: &str, admin_password: String) -> anyhow::Result<Vec<Account>> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let admin = sign_in(&http, portal, ADMIN_EMAIL, &admin_password).await?;
    let org = json!({"name": ORGANIZATION, "domains": ["acme.example"], "sharing": "organization"});
    call(&http, portal, &admin, "/api/v1/admin/organizations", &org).await?;
    let customers = [
        ("customer", "alice@acme.example", "Alice Lim"),
        ("colleague", "bima@acme.example", "Bima Santoso"),
    ];
    let mut accounts = Vec::new();
    for (role, email, name) in customers {
        let account = Account {
            role,
            email,
            name,
            password: password(),
        };
        let user = json!({"email": account.email, "name": account.name, "password": account.password,
                          "role": "customer", "organization": ORGANIZATION});
        call(&http, portal, &admin, "/api/v1/admin/users", &user).await?;
        accounts.push(account);
    }
    let alice = sign_in(&http, portal, accounts[0].email, &accounts[0].password).await?;
    let ticket = json!({"kind": "problem_report", "subject": "Our VM in Jakarta does not boot",
                        "description": "Since this morning the VM web-01 stays at \"starting\".",
                        "priority": "high"});
    call(&http, portal, &alice, "/api/v1/tickets", &ticket).await?;
    accounts.push(Account {
        role: "admin",
        email: ADMIN_EMAIL,
        name: "Demo admin",
        password: admin_password,
    });
    Ok(accounts)
}

async fn sign_in(
    http: &reqwest::Client,
    portal: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": password});
    let answer = call(http, portal, "", "/api/v1/auth/token", &body).await?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("the sign-in answer has no token")
}

async fn call(
    http: &reqwest::Client,
    portal: &str,
    token: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut request = http.post(format!("{portal}{path}")).json(body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path} answered {status}: {answer}");
    }
    Ok(answer)
}

fn print_banner(portal: &str, desk: &str, accounts: &[Account]) {
    let mut out = format!(
        "\ndeskbridge demo: the appliance and a simulated ServiceDesk Plus in one process, on a \
         temporary data dir that is removed on exit.\n\n  \
         Customer portal  {portal}/\n  \
         Service desk     {desk}/   (play the technician: reply, note, assign, status, attach, resolve)\n  \
         Admin console    {portal}/admin\n\n  Sample accounts ({ORGANIZATION} shares its tickets among its members):\n"
    );
    for a in accounts {
        let _ = writeln!(
            out,
            "    {:<10} {:<24} password {:<18} {}",
            a.role, a.email, a.password, a.name
        );
    }
    out.push_str("\nStop with Ctrl+C.\n");
    print!("{out}");
    // Someone (or a test) reads this through a pipe: show it now, not at exit.
    let _ = std::io::Write::flush(&mut std::io::stdout());
}
