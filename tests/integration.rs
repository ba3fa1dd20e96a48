//! One integration-test binary: each module boots the real app through `common`.

mod common;

mod access;
mod attachments;
mod auth;
mod backup;
mod config_cli;
mod durability;
mod fake_sdp_selftest;
mod lifecycle;
mod pages;
mod structure;
mod sync;
mod system;
mod tickets;
