// TEMPORARY harness (removed after verification): runs tests/e2e/llm_saas.rs
// without touching tests/e2e/mod.rs.
mod e2e {
    #[path = "../e2e/common.rs"]
    #[allow(dead_code)]
    pub mod common;
    #[path = "../e2e/llm_saas.rs"]
    mod llm_saas;
}
