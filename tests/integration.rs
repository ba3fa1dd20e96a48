//! One integration-test binary: each module boots the real app through `common`.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

#[macro_use]
mod common;

mod access;
mod attachments;
mod auth;
mod backup;
mod branding;
mod cc;
mod config_cli;
mod console_tickets;
mod convergence;
mod crash;
mod demo;
mod durability;
mod fake_sdp_selftest;
mod lifecycle;
mod oidc;
mod orgs;
mod pages;
mod promise;
mod proxies;
mod secrets_at_rest;
mod security;
mod security_limits;
mod services;
mod structure;
mod sync;
mod sync_budget;
mod sync_realities;
mod system;
mod tickets;
mod tls;
