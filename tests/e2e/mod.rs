//! The end-to-end areas.

mod aws_iam;
mod bad_input;
mod browser;
mod common;
mod crash;
mod daemon;
mod demo;
mod github;
mod history;
mod llm_saas;
mod reports;
mod security;
mod sinks;
mod soak;
