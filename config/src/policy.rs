//! The Cedar policy file: parsed with `cedar_policy`, each parse error placed
//! on its line through the error's `miette` labels.

use crate::problem::{FileCtx, Problem};
use cedar_policy::PolicySet;
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `[policy]`: declared access; effective access outside it is drift.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyConfig {
    /// `cedar`: the Cedar policy file (required; resolved against the config's
    /// folder).
    pub cedar_path: PathBuf,
    /// The policy source text, as read by `load` (it parses).
    pub text: String,
    /// `governs`: names of the sources under the policy; `None` (key absent)
    /// means every source. Each must name a `[[source]]`.
    pub governs: Option<Vec<String>>,
}

impl PolicyConfig {
    /// The policy, parsed (`load` has already checked that it parses).
    pub fn policy_set(&self) -> Result<PolicySet, Box<cedar_policy::ParseErrors>> {
        PolicySet::from_str(&self.text).map_err(Box::new)
    }
}

/// Parses a policy's text; `file` names it in problems.
pub(crate) fn check_policy(file: &Path, text: &str) -> Vec<Problem> {
    let mut ctx = FileCtx::new(file, text);
    if let Err(errors) = PolicySet::from_str(text) {
        for error in errors.iter() {
            let mut message = error.to_string();
            let label = error.labels().and_then(|mut labels| labels.next());
            if let Some(text) = label.as_ref().and_then(|label| label.label())
                && !text.is_empty()
                && !message.contains(text)
            {
                message.push_str(&format!(" ({text})"));
            }
            if let Some(help) = error.help() {
                message.push_str(&format!("; help: {help}"));
            }
            let span = label.map(|label| label.offset()..label.offset() + label.len());
            ctx.at(span, message);
        }
    }
    ctx.finish()
}
