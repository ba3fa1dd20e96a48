//! The `ServiceDesk Plus` REST API v3 client: one shared `reqwest` client (rustls, timeouts), `input_data`
//! in the query (GET) or a form body (POST/PUT), the vnd Accept header, on-prem `authtoken` or Cloud
//! Zoho OAuth, a request budget that is never exceeded, and errors that say whether to retry.

pub(crate) mod budget;
mod client;
pub(crate) mod dto;
pub(crate) mod error;
mod oauth;
mod requesters;
mod send;
mod transfer;

pub(crate) use budget::{Budget, Lane};
pub(crate) use client::SdpClient;
pub(crate) use error::SdpError;
pub(crate) use requesters::requester_ref;
pub(crate) use send::Upload;
