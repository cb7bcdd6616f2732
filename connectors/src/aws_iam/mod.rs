//! AWS IAM source (`kind = "aws-iam"`): users, groups, roles, managed and
//! inline policies, access keys and who can become whom, for one account or
//! several (`assume_roles`).
//!
//! Get → transform, as everywhere: [`client`] (live, aws-sdk-iam/sts) or
//! [`offline`] (a file pair) produce [`raw::AccountData`] per account;
//! [`transform`] maps them with the IAM semantics of [`policy`]; nothing here
//! touches the store.
//!
//! Several accounts are one source and one fragment: when any account fails
//! (a role that cannot be assumed, an `AccessDenied`), the whole sync fails
//! and the store keeps every account's previous rows, so a failure never
//! reads as "access removed". To refresh the healthy accounts while one is
//! broken, configure one `[[source]]` per account.

pub mod client;
pub mod offline;
pub mod policy;
pub mod raw;
pub mod transform;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use accessgraph_config::AwsIamSettings;
use accessgraph_graph::Fragment;
use async_trait::async_trait;

use crate::connector::{Connector, SyncError};
use client::{ClientOptions, IamClient};
use raw::AccountData;

pub use transform::{MapSettings, map};

/// A connector for one `aws-iam` source.
#[derive(Clone, Debug)]
pub struct AwsIamConnector {
    source: String,
    settings: AwsIamSettings,
    options: ClientOptions,
}

impl AwsIamConnector {
    /// The connector of source `source` with its settings (paths already
    /// resolved against the config's folder).
    pub fn new(source: impl Into<String>, settings: AwsIamSettings) -> AwsIamConnector {
        let options = ClientOptions::new(settings.region.clone(), settings.endpoint_url.clone());
        AwsIamConnector { source: source.into(), settings, options }
    }

    /// Replaces the client options (retries, polling; tests shorten them).
    pub fn with_options(mut self, options: ClientOptions) -> AwsIamConnector {
        self.options = options;
        self
    }

    async fn collect(&self) -> Result<Vec<AccountData>, SyncError> {
        if let (Some(details), Some(report)) = (&self.settings.authorization_details, &self.settings.credential_report)
        {
            return Ok(vec![offline::read_account(details, report).await?]);
        }
        let config = client::sdk_config(&self.options).await;
        let base = client::caller_account(&config).await?;
        let mut clients = vec![IamClient::new(&config, &self.options, base.clone())];
        let mut seen: HashSet<String> = HashSet::from([base]);
        for arn in &self.settings.assume_roles {
            let account = offline::arn_account(arn).unwrap_or_default().to_string();
            if !seen.insert(account) {
                continue; // an account already read
            }
            clients.push(client::assume(&config, &self.options, arn).await?);
        }
        let mut accounts = Vec::with_capacity(clients.len());
        for client in &clients {
            accounts.push(fetch(client).await?);
        }
        Ok(accounts)
    }
}

/// Everything of one account through the API.
async fn fetch(client: &IamClient) -> Result<AccountData, SyncError> {
    let label = format!("iam account {}", client.account);
    let details = client.authorization_details().await?;
    let csv = client.credential_report().await?;
    let report = offline::parse_report(&format!("{label} credential report"), &csv)?;
    let known: HashSet<&str> = details.user_detail_list.iter().map(|u| u.user_name.as_str()).collect();
    let with_keys: Vec<String> = report
        .iter()
        .filter(|r| known.contains(r.user.as_str()))
        .filter(|r| r.keys.iter().any(|k| k.active || k.last_rotated.is_some()))
        .map(|r| r.user.clone())
        .collect();
    let access_keys = client.access_keys_of(&with_keys).await?;
    tracing::info!(
        account = %client.account,
        users = details.user_detail_list.len(),
        groups = details.group_detail_list.len(),
        roles = details.role_detail_list.len(),
        policies = details.policies.len(),
        "aws-iam account read"
    );
    let account_id = if client.account.is_empty() {
        offline::account_of(&details, &report).unwrap_or_default()
    } else {
        client.account.clone()
    };
    Ok(AccountData { label, account_id, details, report, access_keys })
}

#[async_trait]
impl Connector for AwsIamConnector {
    fn source(&self) -> &str {
        &self.source
    }

    fn kind(&self) -> &'static str {
        "aws-iam"
    }

    async fn sync(&self) -> Result<Fragment, SyncError> {
        let accounts = self.collect().await?;
        let settings = MapSettings {
            source: &self.source,
            account_name: &self.settings.account_name,
            owner_tags: &self.settings.owner_tags,
            agent_tags: &self.settings.agent_tags,
        };
        let fragment = map(&settings, &accounts)?;
        tracing::debug!(source = %self.source, accounts = accounts.len(), nodes = fragment.nodes.len(),
            edges = fragment.edges.len(), "aws-iam mapped");
        Ok(fragment)
    }
}
