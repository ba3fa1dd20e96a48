//! deskbridge: an on-prem appliance between the Cloudeka Service Portal and `ManageEngine`
//! `ServiceDesk` Plus. See ARCHITECTURE.md for the module map.
//!
//! Modules are private to the crate unless the integration tests or benchmarks drive them; the
//! `unreachable_pub` lint keeps everything else `pub(crate)`.

pub mod actors;
pub mod app;
pub mod auth;
pub(crate) mod backup;
pub mod cli;
pub mod config;
pub(crate) mod demo;
pub mod domain;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod oidc;
pub(crate) mod sdp;
pub mod service;
pub(crate) mod settings;
pub mod store;
pub mod sync;
pub mod tickets;
pub(crate) mod web;
