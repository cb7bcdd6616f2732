//! Ticket sinks.
