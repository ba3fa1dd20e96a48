//! Helpers shared by the benchmark binaries: signing in, creating customers, and the statistics
//! they report. Included with `#[path = "common/mod.rs"] mod common;`.

use std::time::Duration;

use anyhow::{Context, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Signs in through the API and returns the bearer token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(
        status == StatusCode::OK,
        "sign-in of {email}: {status} {body}"
    );
    Ok(body["token"].as_str().context("token")?.to_owned())
}

/// Creates a customer account through the admin API, in the organisation
/// `DESKBRIDGE_BENCH_ORGANIZATION` names (default "Bench Org"; empty: none).
pub async fn create_customer(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    let organization =
        std::env::var("DESKBRIDGE_BENCH_ORGANIZATION").unwrap_or_else(|_| "Bench Org".to_owned());
    let response = http
        .post(format!("{base}/api/v1/admin/users"))
        .bearer_auth(admin)
        .json(&json!({"email": email, "name": name, "password": password, "role": "customer", "organization": organization}))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == StatusCode::CREATED,
        "create {email}: {status} {body}"
    );
    Ok(())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn per_sec(n: usize, d: Duration) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX)) / d.as_secs_f64()
}

/// Nearest-rank percentile of sorted samples; `per_mille` 500 is the median, 990 the p99.
pub fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * per_mille).div_ceil(1000).max(1);
    sorted[rank - 1]
}
