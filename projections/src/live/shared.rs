//! Values many live tokens have in common, held once. Under load a client's tokens all have
//! the same owner and the same scope; a copy of each per token (three small allocations) was
//! a third of a live token's memory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::state::Owner;

#[derive(Default)]
pub(super) struct Shared {
    /// By client, then by username ("" for a client's own tokens).
    owners: HashMap<String, HashMap<String, Arc<Owner>>>,
    /// Scopes, audiences and `act` claims.
    texts: HashSet<Arc<str>>,
}

impl Shared {
    pub(super) fn owner(&mut self, client_id: &str, username: Option<&str>) -> Arc<Owner> {
        let by_user = match self.owners.get_mut(client_id) {
            Some(by_user) => by_user,
            None => self.owners.entry(client_id.to_owned()).or_default(),
        };
        if let Some(owner) = by_user.get(username.unwrap_or_default()) {
            return owner.clone();
        }
        let owner = Arc::new(Owner {
            client_id: client_id.to_owned(),
            username: username.map(str::to_owned),
        });
        by_user.insert(username.unwrap_or_default().to_owned(), owner.clone());
        owner
    }

    pub(super) fn text(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.texts.insert(shared.clone());
        shared
    }

    /// Forgets what no token or grant holds any more.
    pub(super) fn prune(&mut self) {
        self.texts.retain(|text| Arc::strong_count(text) > 1);
        for by_user in self.owners.values_mut() {
            by_user.retain(|_, owner| Arc::strong_count(owner) > 1);
        }
        self.owners.retain(|_, by_user| !by_user.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_is_handed_out_until_nobody_holds_it() {
        let mut shared = Shared::default();
        let (a, b) = (
            shared.owner("app", Some("alice")),
            shared.owner("app", Some("alice")),
        );
        assert!(Arc::ptr_eq(&a, &b));
        let own = shared.owner("app", None);
        assert!(
            !Arc::ptr_eq(&a, &own),
            "the client's own tokens have another owner"
        );
        assert_eq!(own.username, None);
        let (s, t) = (shared.text("openid email"), shared.text("openid email"));
        assert!(Arc::ptr_eq(&s, &t));

        drop((a, b, s, t));
        shared.prune();
        assert_eq!(shared.texts.len(), 0);
        assert_eq!(shared.owners["app"].len(), 1, "the owner still held stays");
        drop(own);
        shared.prune();
        assert!(shared.owners.is_empty());
    }
}
