//! The end-to-end areas.

mod bad_input;
mod common;
mod demo;
mod history;
