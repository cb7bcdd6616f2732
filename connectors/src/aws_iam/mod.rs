//! AWS IAM source (`kind = "aws-iam"`): users, groups, roles, managed and
//! inline policies, access keys and who can become whom, for one account or
//! several (`assume_roles`).
//!
//! Get → transform, as everywhere: [`client`] (live, aws-sdk-iam/sts) or
//! [`offline`] (a file pair) produce [`raw::AccountData`] per account;
//! [`transform`] maps them with the IAM semantics of [`policy`]; nothing here
//! touches the store.
//!
//! Several accounts are one source, each account its own slice: when one
//! account fails (a role that cannot be assumed, an `AccessDenied`, an
//! export that does not map), the fragment holds the accounts that were read
//! and names the failed one in [`Fragment::kept`] (its node-id scope and the
//! error); the store carries that account's previous rows over unchanged and
//! records the run as `partial`. Only when no account can be read does the
//! whole sync fail. A failure never reads as "access removed".

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
use accessgraph_graph::model::KeptSlice;
use async_trait::async_trait;

use crate::connector::{Connector, SyncError};
use client::{ClientOptions, IamClient};
use raw::AccountData;

pub use transform::{MapSettings, Unread, account_prefixes, map, map_partial};

/// What one collection produced: the accounts read, and those that failed.
struct Collected {
    accounts: Vec<AccountData>,
    /// (account id, error) of each account that could not be read.
    failed: Vec<(String, SyncError)>,
    /// Whether the credentials' own account is among the failed.
    primary_failed: bool,
}

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

    async fn collect(&self) -> Result<Collected, SyncError> {
        if let (Some(details), Some(report)) = (&self.settings.authorization_details, &self.settings.credential_report)
        {
            let accounts = vec![offline::read_account(details, report).await?];
            return Ok(Collected { accounts, failed: Vec::new(), primary_failed: false });
        }
        let config = client::sdk_config(&self.options).await;
        let base = client::caller_account(&config).await?;
        // The credentials' own account first, then one per further account.
        let mut targets: Vec<(String, Option<&str>)> = vec![(base.clone(), None)];
        let mut seen: HashSet<String> = HashSet::from([base]);
        for arn in &self.settings.assume_roles {
            let account = offline::arn_account(arn).unwrap_or_default().to_string();
            if !seen.insert(account.clone()) {
                continue; // an account already read
            }
            targets.push((account, Some(arn.as_str())));
        }
        let several = targets.len() > 1;
        let mut collected = Collected { accounts: Vec::new(), failed: Vec::new(), primary_failed: false };
        for (i, (account, arn)) in targets.into_iter().enumerate() {
            let read = async {
                let client = match arn {
                    None => IamClient::new(&config, &self.options, account.clone()),
                    Some(arn) => client::assume(&config, &self.options, arn).await?,
                };
                fetch(&client).await
            };
            match read.await {
                Ok(data) => collected.accounts.push(data),
                // One account alone, or one whose id is unknown (no slice to
                // keep): the whole sync fails, as before.
                Err(error) if !several || !is_account_id(&account) => return Err(error),
                Err(error) => {
                    tracing::warn!(source = %self.source, account = %account, error = %error,
                        "aws-iam account not read; its stored rows are kept");
                    collected.primary_failed |= i == 0;
                    collected.failed.push((account, error));
                }
            }
        }
        if collected.accounts.is_empty()
            && let Some((_, error)) = collected.failed.pop()
        {
            // Nothing read at all: a failed sync, not a partial one.
            return Err(error);
        }
        Ok(collected)
    }
}

/// A 12-digit AWS account id.
fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
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

    /// The fragment of every account read; accounts that failed (to be
    /// read, or to map) are named in `kept` with their error.
    async fn sync(&self) -> Result<Fragment, SyncError> {
        let Collected { mut accounts, mut failed, mut primary_failed } = self.collect().await?;
        let settings = MapSettings {
            source: &self.source,
            account_name: &self.settings.account_name,
            owner_tags: &self.settings.owner_tags,
            agent_tags: &self.settings.agent_tags,
        };
        let mut fragment = loop {
            let unread =
                Unread { accounts: failed.iter().map(|(id, _)| id.clone()).collect(), primary: primary_failed };
            match map_partial(&settings, &accounts, &unread) {
                Ok(fragment) => break fragment,
                // An account whose export does not map is an account not
                // read: map the others without it.
                Err(SyncError::Invalid { path, location, message })
                    if accounts.len() > 1 && accounts.iter().any(|a| a.label == path) =>
                {
                    let at = accounts.iter().position(|a| a.label == path).unwrap_or_default();
                    let account = accounts.remove(at);
                    tracing::warn!(source = %self.source, account = %account.account_id, %location, %message,
                        "aws-iam account does not map; its stored rows are kept");
                    // `accounts[0]` is the credentials' own account while it is read.
                    primary_failed |= at == 0;
                    failed.push((account.account_id, SyncError::Invalid { path, location, message }));
                }
                Err(error) => return Err(error),
            }
        };
        fragment.kept = failed
            .iter()
            .map(|(account, error)| KeptSlice {
                name: format!("account {account}"),
                prefixes: account_prefixes(&self.source, account),
                error: error.to_string(),
            })
            .collect();
        tracing::debug!(source = %self.source, accounts = accounts.len(), unread = failed.len(),
            nodes = fragment.nodes.len(), edges = fragment.edges.len(), "aws-iam mapped");
        Ok(fragment)
    }
}
