//! End-to-end tests: the `accessgraph` binary against fixture files, mock
//! APIs and real databases. One test binary, one module per area.

mod e2e;
