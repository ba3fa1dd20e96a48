//! Browser end-to-end tests: headless Chromium, driven over `WebDriver` (Debian's `chromedriver`) with
//! fantoccini, against the real `deskbridge` binary (configured by environment variables, as an
//! operator would) and the fake SDP of `tests/common`.
//!
//! Needs `apt-get install chromium chromium-driver`, and npm for axe-core (`tests/browser/package.json`).
//! Without Chromium the tests print a notice and pass, unless `CI` is set: then they fail.
//! Each run saves screenshots of the main pages under `target/screenshots/`.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

mod common;

// The modules live in tests/browser/, beside axe-core's package.json.
#[path = "browser/accessibility.rs"]
mod accessibility;
#[path = "browser/admin.rs"]
mod admin;
#[path = "browser/customer.rs"]
mod customer;
#[path = "browser/demo.rs"]
mod demo;
#[path = "browser/files.rs"]
mod files;
#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/orgs.rs"]
mod orgs;
#[path = "browser/xss.rs"]
mod xss;
