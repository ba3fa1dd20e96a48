//! The binary's commands: `check-config`, `healthcheck`, `--version`, and `serve` refusing bad config.

use crate::common::{TestApp, deskbridge_command as deskbridge};

#[test]
fn check_config_prints_the_merged_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deskbridge.toml");
    std::fs::write(
        &file,
        "[sdp]\nbase_url = \"https://sdp.example.com\"\napi_key = \"super-secret-key\"\n",
    )
    .unwrap();
    let out = deskbridge()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("DESKBRIDGE__PORTAL__TICKET_PREFIX", "OPS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("base_url = \"https://sdp.example.com\""),
        "{text}"
    );
    assert!(text.contains("ticket_prefix = \"OPS\""), "{text}");
    assert!(text.contains("api_key = \"[redacted]\""), "{text}");
    assert!(!text.contains("super-secret-key"));
}

#[test]
fn check_config_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deskbridge.toml");
    std::fs::write(&file, "[portal]\nreopen_window_dayz = 3\n").unwrap();
    let out = deskbridge()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("reopen_window_dayz"), "{err}");

    let out = deskbridge()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "serve refuses an invalid config"
    );

    let out = deskbridge()
        .args(["check-config"])
        .env("DESKBRIDGE_CONFIG", dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn version_is_printed() {
    let out = deskbridge().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION"))
    );
}

#[actix_web::test]
async fn healthcheck_exits_zero_only_when_healthz_answers() {
    let app = TestApp::start().await;
    let url = app.url("/healthz");
    let ok = tokio::task::spawn_blocking(move || {
        deskbridge()
            .args(["healthcheck", "--url", &url])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(ok.success());
    // A port nothing listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let down = tokio::task::spawn_blocking(move || {
        deskbridge()
            .args(["healthcheck", "--url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

#[test]
fn a_cloud_configuration_with_secret_files_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    let refresh = dir.path().join("refresh-token");
    std::fs::write(&secret, "cloud-client-secret-value\n").unwrap();
    std::fs::write(&refresh, "cloud-refresh-token-value\n").unwrap();
    let file = dir.path().join("deskbridge.toml");
    std::fs::write(
        &file,
        format!(
            "[sdp]\nbase_url = \"https://sdpondemand.manageengine.com/app/itdesk\"\n\
             deployment = \"cloud\"\noauth_client_id = \"1000.CLIENT\"\n\
             oauth_client_secret_file = {:?}\noauth_refresh_token_file = {:?}\n",
            secret.display().to_string(),
            refresh.display().to_string()
        ),
    )
    .unwrap();
    let out = deskbridge()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("oauth_client_secret = \"[redacted]\""),
        "{text}"
    );
    assert!(!text.contains("cloud-client-secret-value"), "{text}");
    assert!(!text.contains("cloud-refresh-token-value"), "{text}");
}
