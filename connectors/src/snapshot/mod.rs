//! Snapshot source (being written).
