//! Keys derived from a node when it is written, so that the accounts of a
//! person can be found by a few indexed look-ups instead of reading every
//! account (who-can / what-can answered from the store). They mirror how
//! `accessgraph_graph::access::AccessGraph` resolves accounts to people.

use accessgraph_graph::model::{Node, NodeKind};

/// The derived keys of one node (all `None` for anything but a human account).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeKeys {
    /// The account's own email, trimmed and lower-cased (`person:` + this is its person id).
    pub email: Option<String>,
    /// The KEY of its `SOURCE:KIND:KEY` id, lower-cased (matched against IdP identifiers).
    pub account: Option<String>,
    /// `attrs.user_name`, trimmed and lower-cased, of an account with an email.
    pub user_name: Option<String>,
    /// `attrs.external_id`, trimmed and lower-cased, of an account with an email.
    pub external_id: Option<String>,
}

/// The KEY of a `SOURCE:KIND:KEY` node id.
pub(crate) fn account_key(id: &str) -> Option<&str> {
    id.splitn(3, ':').nth(2).filter(|key| !key.is_empty())
}

/// An email as a person id's key, when it is one (contains `@`).
pub(crate) fn email_key(email: &str) -> Option<String> {
    email.contains('@').then(|| email.trim().to_lowercase())
}

/// The keys of a node.
pub(crate) fn node_keys(node: &Node) -> NodeKeys {
    if node.kind != NodeKind::Human {
        return NodeKeys::default();
    }
    let email = node.email.as_deref().and_then(email_key);
    let identifier = |attr: &str| {
        email.as_ref()?;
        node.attrs.get(attr).map(|v| v.trim().to_lowercase()).filter(|v| !v.is_empty())
    };
    NodeKeys {
        user_name: identifier("user_name"),
        external_id: identifier("external_id"),
        account: account_key(&node.id).map(str::to_lowercase),
        email,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_human_accounts_have_keys_and_identifiers_need_an_email() {
        let mut node = Node::new("idp:user:Alice.A", NodeKind::Human, "idp", "Alice");
        node.email = Some(" Alice@Acme.Example ".into());
        node.attrs.insert("user_name".into(), " ALICE.a ".into());
        node.attrs.insert("external_id".into(), "  ".into());
        let keys = node_keys(&node);
        assert_eq!(keys.email.as_deref(), Some("alice@acme.example"));
        assert_eq!(keys.account.as_deref(), Some("alice.a"));
        assert_eq!(keys.user_name.as_deref(), Some("alice.a"));
        assert_eq!(keys.external_id, None);
        node.email = Some("not-an-email".into());
        let keys = node_keys(&node);
        assert_eq!((keys.email, keys.user_name), (None, None));
        node.kind = NodeKind::Agent;
        assert_eq!(node_keys(&node), NodeKeys::default());
    }
}
