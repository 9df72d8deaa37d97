//! The revocation list: tokens refused by `jti`, and subjects whose tokens issued before a time
//! are refused, each until the revocation ends. Bounded: a revocation that ended is forgotten,
//! and a full list refuses new revocations from the API (an entry is never dropped while in
//! force, which would quietly let its token back in).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ControlError;
use crate::fanout::Identity;

/// A revocation: one token by its `jti`, or every token of a `sub` issued before a time, refused
/// until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revoked token's `jti` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The subject whose tokens are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// With `sub`: the tokens issued before this time (their `iat`, in seconds since the Unix
    /// epoch) are revoked; a token without `iat` counts as issued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// When the revocation ends (seconds since the Unix epoch): the revoked tokens' `exp`.
    pub until: u64,
}

impl Revocation {
    /// This revocation and `other` (for the same token or subject) as one: the later end, and
    /// for a subject the later `before` (none: every token).
    pub fn merged(&self, other: &Revocation) -> Revocation {
        Revocation {
            jti: self.jti.clone(),
            sub: self.sub.clone(),
            before: match (self.before, other.before) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
            until: self.until.max(other.until),
        }
    }

    /// Whether a token with this identity is refused by this revocation at `now`.
    pub fn covers(&self, identity: &Identity, now: u64) -> bool {
        if now >= self.until {
            return false;
        }
        if let Some(jti) = &self.jti {
            return identity.jti.as_ref() == Some(jti);
        }
        match &self.sub {
            Some(sub) => {
                identity.sub.as_ref() == Some(sub)
                    && match (self.before, identity.issued_at) {
                        (Some(before), Some(issued)) => issued < before,
                        _ => true,
                    }
            }
            None => false,
        }
    }
}

/// The revocations in force, by `jti` and by `sub`.
#[derive(Debug)]
pub(super) struct Revocations {
    by_jti: HashMap<String, Revocation>,
    by_sub: HashMap<String, Revocation>,
    limit: usize,
}

impl Revocations {
    pub(super) fn new(limit: usize) -> Revocations {
        Revocations {
            by_jti: HashMap::new(),
            by_sub: HashMap::new(),
            limit,
        }
    }

    /// Forgets the revocations that ended.
    fn purge(&mut self, now: u64) {
        self.by_jti.retain(|_, r| r.until > now);
        self.by_sub.retain(|_, r| r.until > now);
    }

    pub(super) fn len(&mut self, now: u64) -> usize {
        self.purge(now);
        self.by_jti.len() + self.by_sub.len()
    }

    /// The list `revocation` belongs in, and its key there.
    fn place(
        &mut self,
        revocation: &Revocation,
    ) -> Option<(&mut HashMap<String, Revocation>, String)> {
        match (&revocation.jti, &revocation.sub) {
            (Some(jti), _) => Some((&mut self.by_jti, jti.clone())),
            (None, Some(sub)) => Some((&mut self.by_sub, sub.clone())),
            (None, None) => None,
        }
    }

    fn is_new(&mut self, revocation: &Revocation) -> bool {
        self.place(revocation)
            .is_some_and(|(list, key)| !list.contains_key(&key))
    }

    /// Whether `revocation` can be added: it ended already, updates one in force, or the list
    /// has room.
    pub(super) fn room_for(
        &mut self,
        revocation: &Revocation,
        now: u64,
    ) -> Result<(), ControlError> {
        if revocation.until <= now || !self.is_new(revocation) || self.len(now) < self.limit {
            Ok(())
        } else {
            Err(ControlError::Full { limit: self.limit })
        }
    }

    /// Adds `revocation`, merged with the one in force for the same token or subject. A full
    /// list makes room by forgetting the revocation that ends first: only revocations the API
    /// accepted on another node reach a full list, and every node must apply what the others
    /// did.
    pub(super) fn insert(&mut self, revocation: &Revocation, now: u64) {
        if revocation.until <= now {
            return;
        }
        if self.is_new(revocation) && self.len(now) >= self.limit {
            self.evict_first_ending();
        }
        if let Some((list, key)) = self.place(revocation) {
            let merged = match list.get(&key) {
                Some(existing) => existing.merged(revocation),
                None => revocation.clone(),
            };
            list.insert(key, merged);
        }
    }

    fn evict_first_ending(&mut self) {
        let first = |list: &HashMap<String, Revocation>| {
            list.iter()
                .min_by_key(|(_, r)| r.until)
                .map(|(k, r)| (k.clone(), r.until))
        };
        match (first(&self.by_jti), first(&self.by_sub)) {
            (Some((jti, a)), Some((_, b))) if a <= b => {
                self.by_jti.remove(&jti);
            }
            (_, Some((sub, _))) => {
                self.by_sub.remove(&sub);
            }
            (Some((jti, _)), None) => {
                self.by_jti.remove(&jti);
            }
            (None, None) => {}
        }
        tracing::warn!(
            limit = self.limit,
            "the revocation list is full: the revocation that ends first was forgotten"
        );
    }

    pub(super) fn is_revoked(&self, identity: &Identity, now: u64) -> bool {
        identity
            .jti
            .as_ref()
            .and_then(|jti| self.by_jti.get(jti))
            .is_some_and(|r| r.covers(identity, now))
            || identity
                .sub
                .as_ref()
                .and_then(|sub| self.by_sub.get(sub))
                .is_some_and(|r| r.covers(identity, now))
    }

    pub(super) fn in_force(&mut self, now: u64) -> Vec<Revocation> {
        self.purge(now);
        self.by_jti
            .values()
            .chain(self.by_sub.values())
            .cloned()
            .collect()
    }
}
