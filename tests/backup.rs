//! Backup and restore: a running appliance's tickets, messages and files survive a backup through
//! the CLI and a restore into a new data dir, byte for byte; damaged archives and unsafe targets
//! are refused.

use std::path::{Path, PathBuf};
use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, PASSWORD, TestApp, deskbridge_command, error_code};

/// Content easy to find inside an archive.
const MARKER: &[u8] = b"deskbridge-backup-test-content";

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || deskbridge_command().args(args).output().unwrap())
        .await
        .unwrap()
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub async fn backup(app: &TestApp, admin: &Api, out: &Path) -> Output {
    let token_file = app.dir.path().join("token");
    std::fs::write(&token_file, admin.token.as_deref().unwrap()).unwrap();
    run(vec![
        "backup".into(),
        "--out".into(),
        arg(out),
        "--url".into(),
        app.base.clone(),
        "--token-file".into(),
        arg(&token_file),
    ])
    .await
}

pub async fn restore(from: &Path, data_dir: &Path) -> Output {
    run(vec![
        "restore".into(),
        "--from".into(),
        arg(from),
        "--data-dir".into(),
        arg(data_dir),
    ])
    .await
}

/// Everything a customer can read: each ticket with its events, messages, attachment list and
/// attachment bytes.
async fn everything(api: &Api) -> Vec<(Value, Value, Value, Value, Vec<Vec<u8>>)> {
    let (status, list) = api.get("/api/v1/tickets?per_page=100").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut all = Vec::new();
    for ticket in list["items"].as_array().unwrap() {
        let n = ticket["number"].as_str().unwrap();
        let (_, full) = api.get(&format!("/api/v1/tickets/{n}")).await;
        let (_, events) = api.get(&format!("/api/v1/tickets/{n}/events")).await;
        let (_, messages) = api.get(&format!("/api/v1/tickets/{n}/messages")).await;
        let (_, files) = api.get(&format!("/api/v1/tickets/{n}/attachments")).await;
        let mut contents = Vec::new();
        for file in files["items"].as_array().unwrap() {
            contents.push(api.download(n, &file["id"]).await);
        }
        all.push((full, events, messages, files, contents));
    }
    all
}

#[actix_web::test]
async fn a_backup_of_a_running_appliance_restores_every_ticket_message_and_file() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let customers = [
        app.customer("alice@example.com").await,
        app.customer("bob@example.com").await,
    ];
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut marked = MARKER.to_vec();
    marked.extend_from_slice(&[0, 1, 2, 255]);
    for (i, customer) in customers.iter().enumerate() {
        for t in 0..3 {
            let n = customer
                .ticket(&format!("Ticket {t} of customer {i}"))
                .await["number"]
                .as_str()
                .unwrap()
                .to_owned();
            let (status, body) = customer
                .post(
                    &format!("/api/v1/tickets/{n}/messages"),
                    &json!({"body": format!("Message {t}: ünïcödé <b>text</b>")}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            for (name, content) in [
                ("big.bin", big.clone()),
                ("marked.bin", marked.clone()),
                ("empty.txt", Vec::new()),
                ("own.txt", format!("ticket {n}").into_bytes()),
            ] {
                let (status, body) = customer.upload(&n, name, content).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
        }
    }
    let before = [
        everything(&customers[0]).await,
        everything(&customers[1]).await,
    ];
    let (_, users_before) = admin.get("/api/v1/admin/users").await;
    // The console's settings and audit log travel with the store.
    let store = &app.state().store;
    store.put_setting("probe", &"kept".to_owned()).unwrap();
    let audit_before = store.audit_log(100).unwrap();
    assert!(!audit_before.is_empty(), "creating accounts is audited");

    let archive = app.dir.path().join("backup.tar");
    let out = backup(&app, &admin, &archive).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("backup: downloading"),
        "{}",
        stderr(&out)
    );
    assert!(archive.exists());
    assert!(!PathBuf::from(format!("{}.partial", archive.display())).exists());
    assert_eq!(
        std::fs::read_dir(app.config.storage.data_dir.join("tmp"))
            .unwrap()
            .count(),
        0,
        "the staged snapshot is removed once sent"
    );

    let restored_dir = tempfile::tempdir().unwrap();
    let data_dir = restored_dir.path().join("data");
    let out = restore(&archive, &data_dir).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data_dir.join(".restore-tmp").exists());

    let restored = TestApp::start_with(|c| c.storage.data_dir = data_dir.clone()).await;
    for (i, email) in ["alice@example.com", "bob@example.com"].iter().enumerate() {
        let customer = restored.login(email, PASSWORD).await;
        let after = everything(&customer).await;
        assert_eq!(after.len(), 3);
        assert_eq!(after, before[i], "{email}'s tickets are restored exactly");
    }
    let (_, users_after) = restored.admin().await.get("/api/v1/admin/users").await;
    assert_eq!(users_after, users_before);
    let store = &restored.state().store;
    assert_eq!(
        store.setting::<String>("probe").unwrap().as_deref(),
        Some("kept")
    );
    assert_eq!(store.audit_log(100).unwrap(), audit_before);
    let next_audit = store.audit("a@example.com", "probe", "").unwrap();
    assert!(
        next_audit.seq > audit_before[0].seq,
        "audit numbering continues"
    );
    let next = restored.login("alice@example.com", PASSWORD).await;
    assert_eq!(
        next.ticket("After the restore").await["number"],
        "DB-000007"
    );
}

#[actix_web::test]
async fn only_an_admin_may_take_a_backup_and_one_at_a_time() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let (status, body) = alice.get("/api/v1/admin/backup").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let (status, body) = app.anonymous().get("/api/v1/admin/backup").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthenticated");

    let admin = app.admin().await;
    let permit = app.state().store.try_snapshot_permit().unwrap();
    let (status, body) = admin.get("/api/v1/admin/backup").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "backup-in-progress");
    drop(permit);
    let response = admin
        .request(reqwest::Method::GET, "/api/v1/admin/backup")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let length = response.content_length().unwrap();
    assert_eq!(response.bytes().await.unwrap().len() as u64, length);

    let out = run(vec![
        "backup".into(),
        "--out".into(),
        arg(&app.dir.path().join("refused.tar")),
        "--url".into(),
        app.base.clone(),
        "--token".into(),
        "not-a-token".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(!app.dir.path().join("refused.tar").exists());
    assert!(!app.dir.path().join("refused.tar.partial").exists());
}

#[actix_web::test]
async fn restore_refuses_a_damaged_archive_and_a_used_directory() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Files").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = alice.upload(&n, "marked.bin", MARKER.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let archive = app.dir.path().join("backup.tar");
    let out = backup(&app, &app.admin().await, &archive).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read(&archive).unwrap();
    let target = tempfile::tempdir().unwrap();

    let used = target.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("something"), b"x").unwrap();
    let out = restore(&archive, &used).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&used).unwrap().count(), 1);

    let at = good
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("the file content is in the archive");
    let mut flipped = good.clone();
    flipped[at + 3] ^= 0x01;
    let truncated = good[..good.len() / 2].to_vec();
    let cases = [
        (flipped, "checksum mismatch for blobs/"),
        (truncated, "damaged"),
        (
            b"not a tar archive at all".to_vec(),
            "not a deskbridge backup",
        ),
    ];
    for (i, (bytes, expected)) in cases.into_iter().enumerate() {
        let file = target.path().join(format!("bad-{i}.tar"));
        std::fs::write(&file, bytes).unwrap();
        let dir = target.path().join(format!("restore-{i}"));
        let out = restore(&file, &dir).await;
        assert_eq!(out.status.code(), Some(1), "case {i}");
        assert!(
            stderr(&out).contains(expected),
            "case {i}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "case {i}: nothing is left behind"
        );
    }
}
