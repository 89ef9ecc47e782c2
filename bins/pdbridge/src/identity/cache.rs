//! The identity crate's cache, kept in the store's `identity_cache` table.

use std::sync::Arc;

use identity::{CacheEntry, CacheKey, CacheStore};
use store::{IdentityEntry, IdentityKey, Store};

/// The identity cache kept in the store's `identity_cache` table.
#[derive(Debug, Clone)]
pub struct StoreCache(pub Arc<Store>);

fn cache_err(e: impl std::fmt::Display) -> identity::Error {
    identity::Error::Cache(e.to_string())
}

impl CacheStore for StoreCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, identity::Error> {
        let store = Arc::clone(&self.0);
        let key = IdentityKey::new(key.storage_key());
        let entry = tokio::task::spawn_blocking(move || {
            store.read(|tx| tx.identity_including_expired(&key))
        })
        .await
        .map_err(cache_err)?
        .map_err(cache_err)?;
        match entry {
            None => Ok(None),
            Some(e) => serde_json::from_value(e.entry).map(Some).map_err(cache_err),
        }
    }

    async fn put(&self, entry: CacheEntry) -> Result<(), identity::Error> {
        let store = Arc::clone(&self.0);
        let row = IdentityEntry {
            key: IdentityKey::new(entry.key.storage_key()),
            entry: serde_json::to_value(&entry).map_err(cache_err)?,
            expires_at: entry.expires_at,
            updated_at: entry.stored_at,
        };
        tokio::task::spawn_blocking(move || store.write(|tx| tx.put_identity(&row)))
            .await
            .map_err(cache_err)?
            .map_err(cache_err)
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), identity::Error> {
        let store = Arc::clone(&self.0);
        let key = IdentityKey::new(key.storage_key());
        tokio::task::spawn_blocking(move || {
            store.write(|tx| tx.invalidate_identity(&key).map(|_| ()))
        })
        .await
        .map_err(cache_err)?
        .map_err(cache_err)
    }
}
