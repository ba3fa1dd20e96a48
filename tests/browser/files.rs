//! Files as people add them: dropped on the new-ticket form's drop zone and pasted into its text,
//! and dropped on the reply form, they join the form's file input, are listed, and arrive on the
//! ticket; a file over the limit the form states is refused on the page and never sent. The page
//! with its drop zone and file list passes axe in both languages.

use serde_json::{Value, json};

use crate::accessibility::audit;
use crate::common::PASSWORD;
use crate::harness::{Browser, Session, Setup, axe_source, run};

/// Builds a `DataTransfer` holding one file (a text of `size` bytes, or `text`) and sends it to the
/// element `css` as a drop or a paste, as a browser does for a real drag or Ctrl+V.
async fn deliver(b: &Browser, how: &str, css: &str, name: &str, size: Option<u64>) {
    b.js(
        "const [how, css, name, size] = arguments;\
         const dt = new DataTransfer();\
         const content = size === null ? 'content of ' + name : new Uint8Array(size);\
         dt.items.add(new File([content], name, {type: 'text/plain'}));\
         const target = document.querySelector(css);\
         const e = how === 'drop'\
           ? new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})\
           : new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true});\
         target.dispatchEvent(e);",
        vec![json!(how), json!(css), json!(name), json!(size)],
    )
    .await;
}

/// The names the form's file input holds.
async fn chosen(b: &Browser) -> Value {
    b.js(
        "return Array.from(document.querySelector('input[type=file]').files).map(f => f.name);",
        Vec::new(),
    )
    .await
}

#[actix_web::test]
async fn files_dropped_or_pasted_join_the_form_and_oversized_ones_stay_behind() {
    let test = "files_dropped_or_pasted_join_the_form_and_oversized_ones_stay_behind";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::Configured, async |s: &Session| {
        drop_and_paste(s, &axe).await;
    })
    .await;
}

async fn drop_and_paste(s: &Session, axe: &str) {
    s.app.customer("dewi@example.com", "Dewi Lestari").await;
    let b = &s.browser;
    b.sign_in("dewi@example.com", PASSWORD).await;
    b.goto("/tickets/new").await;
    b.find("#file-drop:not([hidden])").await;
    deliver(b, "drop", "#file-drop", "dropped.txt", None).await;
    deliver(b, "paste", "#description", "pasted.txt", None).await;
    assert_eq!(chosen(b).await, json!(["dropped.txt", "pasted.txt"]));
    let listed = b.text_of("#file-drop ul").await;
    assert!(
        listed.contains("dropped.txt") && listed.contains("pasted.txt"),
        "{listed}"
    );

    // One byte over the limit the page states (the default 25 MiB; built in the page, not sent).
    let limit: Value = b
        .js(
            "return Number(document.querySelector('form[data-max-bytes]').dataset.maxBytes);",
            Vec::new(),
        )
        .await;
    let over = limit.as_u64().expect("the form states its limit") + 1;
    deliver(b, "drop", "#file-drop", "huge.bin", Some(over)).await;
    assert_eq!(
        chosen(b).await,
        json!(["dropped.txt", "pasted.txt"]),
        "not added"
    );
    let message = b.text_of("#file-status").await;
    assert!(
        message.starts_with("Not added, larger than") && message.contains("huge.bin"),
        "{message}"
    );

    let mut violations = audit(b, axe, "new-ticket with files en").await;
    b.screenshot("new-ticket-files-en").await;
    b.switch_language("id").await;
    b.find("#file-drop:not([hidden])").await;
    deliver(b, "drop", "#file-drop", "besar.bin", Some(over)).await;
    let message = b.text_of("#file-status").await;
    assert!(message.starts_with("Tidak ditambahkan"), "{message}");
    deliver(b, "drop", "#file-drop", "dropped.txt", None).await;
    violations.extend(audit(b, axe, "new-ticket with files id").await);
    b.screenshot("new-ticket-files-id").await;
    assert!(violations.is_empty(), "axe:\n{}", violations.join("\n"));

    // Removing one takes it out of the input; the rest is sent with the form.
    deliver(b, "paste", "#description", "pasted.txt", None).await;
    deliver(b, "drop", "#file-drop", "unwanted.txt", None).await;
    b.click("#file-drop li:last-child button").await;
    assert_eq!(chosen(b).await, json!(["dropped.txt", "pasted.txt"]));
    b.fill("#subject", "Files by drag and drop").await;
    b.fill("#description", "See the files.").await;
    b.click_and_load("form[action='/tickets/new'] button[type=submit]")
        .await;
    let path = b.path().await;
    assert!(path.starts_with("/tickets/DB-"), "{path}");
    let files = b.text_of(".chat").await;
    assert!(
        files.contains("dropped.txt") && files.contains("pasted.txt"),
        "{files}"
    );
    assert!(!files.contains("unwanted.txt") && !files.contains("besar.bin"));

    // The reply form takes dropped files the same way.
    b.find("form.reply #file-drop:not([hidden])").await;
    deliver(b, "drop", "form.reply #file-drop", "reply-note.txt", None).await;
    deliver(
        b,
        "drop",
        "form.reply #file-drop",
        "too-big.bin",
        Some(over),
    )
    .await;
    b.fill("#body", "One more file.").await;
    b.click_and_load("form.reply button[type=submit]").await;
    let files = b.text_of(".chat").await;
    assert!(
        files.contains("reply-note.txt") && !files.contains("too-big.bin"),
        "{files}"
    );
}
