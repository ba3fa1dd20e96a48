//! What the console keeps: settings edited there (JSON under a name in `settings`) and the audit
//! log of admin actions (`audit`, keyed by a counter so it reads back in order).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::meta::AUDIT_SEQ;
use super::{Store, StoreError, encode, keys, names};
use crate::domain::brand::Branding;

/// The setting that holds the portal's brand (a snapshot reads it for the logo's content).
pub(super) const BRANDING: &str = "branding";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The admin's e-mail.
    pub admin: String,
    /// A stable name: `sdp.saved`, `mapping.saved`, `user.created`, `dead_letter.retry`, …
    pub action: String,
    /// What was acted on; never a secret.
    pub detail: String,
}

impl Store {
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        Store::get(&self.trees.settings, names::settings, name.as_bytes())
    }

    pub fn put_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let _gate = self.write_gate();
        self.journal.record(names::settings, name.as_bytes());
        self.trees.settings.insert(name.as_bytes(), encode(value))?;
        Ok(())
    }

    /// The portal's brand; the default (deskbridge's own look) until the console saves one.
    pub fn branding(&self) -> Result<Branding, StoreError> {
        Ok(self.setting(BRANDING)?.unwrap_or_default())
    }

    /// Saves the brand. Its logo's content must be committed to the blob store first.
    pub fn put_branding(&self, brand: &Branding) -> Result<(), StoreError> {
        self.put_setting(BRANDING, brand)
    }

    /// Appends to the audit log; durable with the next group commit, like the change it records.
    pub fn audit(&self, admin: &str, action: &str, detail: &str) -> Result<AuditEntry, StoreError> {
        let _gate = self.write_gate();
        // A counter in the store (not sled's id generator), so numbering survives a restore.
        self.journal.record(names::meta, AUDIT_SEQ);
        let seq = self
            .trees
            .meta
            .update_and_fetch(AUDIT_SEQ, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                Some((n + 1).to_be_bytes().to_vec())
            })?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(1, u64::from_be_bytes);
        let entry = AuditEntry {
            seq,
            at: OffsetDateTime::now_utc(),
            admin: admin.to_owned(),
            action: action.to_owned(),
            detail: detail.to_owned(),
        };
        self.journal.record(names::audit, &keys::u64_be(seq));
        self.trees.audit.insert(keys::u64_be(seq), encode(&entry))?;
        Ok(entry)
    }

    /// The newest `limit` entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.trees
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                super::decode(names::audit, &key, &value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_audit_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        // sled's own flusher may hold the directory's lock for a moment after a drop.
        let open = || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match Store::open(dir.path(), 8, "DB", crate::metrics::Metrics::new()) {
                    Ok(store) => return store,
                    Err(e) if std::time::Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => panic!("reopening the store: {e}"),
                }
            }
        };
        let store = open();
        assert_eq!(store.setting::<String>("sdp").unwrap(), None);
        store.put_setting("sdp", &"value".to_owned()).unwrap();
        store
            .audit("a@example.com", "sdp.saved", "base_url")
            .unwrap();
        store
            .audit("a@example.com", "user.created", "b@example.com")
            .unwrap();
        store.flush().unwrap();
        drop(store);
        let store = open();
        assert_eq!(
            store.setting::<String>("sdp").unwrap().as_deref(),
            Some("value")
        );
        let log = store.audit_log(10).unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.created", "sdp.saved"]);
    }
}
