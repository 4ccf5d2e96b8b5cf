//! Attachments of requests (a photo of the pothole, a scanned document): size- and
//! type-limited, their bytes kept by an [`AttachmentStore`] (local disk by default), their
//! description in the database.
//!
//! The type is checked against the bytes, not only the name: a JPEG, PNG or PDF must begin as
//! one. The bytes are written (to a temporary name, then renamed) before the row commits, so a
//! row never names missing bytes; a failure between leaves an unnamed file, never a lost one.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::attachment;

/// The most attachments one request may have.
pub const MAX_PER_REQUEST: u64 = 10;
/// The longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// Where attachment bytes live.
#[async_trait::async_trait]
pub trait AttachmentStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing nothing (keys are fresh).
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), Error>;
    /// The bytes stored under `key`.
    async fn get(&self, key: &str) -> Result<Vec<u8>, Error>;
}

/// Attachment bytes in files under a directory (`service_request.attachments.dir`).
pub struct LocalDiskStore {
    root: PathBuf,
}

impl LocalDiskStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDiskStore { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, Error> {
        // Keys are made here of UUIDs and one slash; anything else is refused.
        let safe = key.split('/').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if !safe {
            return Err(Error::Internal(format!("unsafe attachment key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

#[async_trait::async_trait]
impl AttachmentStore for LocalDiskStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path_of(key)?;
        let io =
            |error: std::io::Error| Error::Internal(format!("cannot store an attachment: {error}"));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let temporary = path.with_extension("partial");
        tokio::fs::write(&temporary, bytes).await.map_err(io)?;
        tokio::fs::rename(&temporary, &path).await.map_err(io)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = self.path_of(key)?;
        tokio::fs::read(&path)
            .await
            .map_err(|error| Error::Internal(format!("cannot read an attachment: {error}")))
    }
}

/// The types accepted, and how each begins.
const ACCEPTED: [(&str, &[u8]); 3] = [
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    (
        "image/png",
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
    ),
    ("application/pdf", b"%PDF-"),
];

/// Checks a declared content type against the bytes.
pub fn check_content(content_type: &str, bytes: &[u8]) -> Result<&'static str, String> {
    let declared = content_type.trim().to_ascii_lowercase();
    let Some((accepted, magic)) = ACCEPTED.iter().find(|(name, _)| *name == declared) else {
        return Err("must be image/jpeg, image/png or application/pdf".into());
    };
    if bytes.starts_with(magic) {
        Ok(accepted)
    } else {
        Err(format!("the file is not a {accepted}"))
    }
}

/// A file name: trimmed, 1 to 200 characters, without path separators or control characters.
pub fn parse_file_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > MAX_FILE_NAME_CHARS
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "must be a plain file name of at most {MAX_FILE_NAME_CHARS} characters"
        ));
    }
    Ok(name.to_string())
}

/// A new attachment, parsed.
pub struct NewAttachment {
    pub request_id: Uuid,
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    pub uploaded_by: Uuid,
}

/// The attachment operations.
pub struct Attachments {
    db: DatabaseConnection,
    store: Arc<dyn AttachmentStore>,
}

impl Attachments {
    pub fn new(db: DatabaseConnection, store: Arc<dyn AttachmentStore>) -> Self {
        Attachments { db, store }
    }

    /// Stores an attachment of a request the caller may see (checked by the caller).
    pub async fn add(&self, new: NewAttachment) -> Result<attachment::Model, Error> {
        let count = attachment::Entity::find()
            .filter(attachment::Column::RequestId.eq(new.request_id))
            .count(&self.db)
            .await?;
        if count >= MAX_PER_REQUEST {
            return Err(Error::precondition(
                "TOO_MANY_ATTACHMENTS",
                format!("a request has at most {MAX_PER_REQUEST} attachments"),
            ));
        }
        let id = Uuid::now_v7();
        let key = format!("{}/{id}", new.request_id);
        self.store.put(&key, &new.bytes).await?;
        let digest: String = Sha256::digest(&new.bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(attachment::ActiveModel {
            id: Set(id),
            request_id: Set(new.request_id),
            file_name: Set(new.file_name),
            content_type: Set(new.content_type.to_string()),
            size_bytes: Set(i64::try_from(new.bytes.len()).unwrap_or(i64::MAX)),
            sha256: Set(digest),
            storage_key: Set(key),
            uploaded_by: Set(new.uploaded_by),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?)
    }

    /// The attachments of a request, oldest first.
    pub async fn list(&self, request_id: Uuid) -> Result<Vec<attachment::Model>, Error> {
        Ok(attachment::Entity::find()
            .filter(attachment::Column::RequestId.eq(request_id))
            .order_by_asc(attachment::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// One attachment of `request_id` with its bytes.
    pub async fn get(
        &self,
        request_id: Uuid,
        id: Uuid,
    ) -> Result<(attachment::Model, Vec<u8>), Error> {
        let row = attachment::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|row| row.request_id == request_id)
            .ok_or_else(|| Error::NotFound(format!("attachment {id}")))?;
        let bytes = self.store.get(&row.storage_key).await?;
        Ok((row, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_against_the_bytes() {
        assert_eq!(
            check_content("image/png", b"\x89PNG\r\n\x1a\nrest"),
            Ok("image/png")
        );
        assert_eq!(
            check_content(" Image/JPEG ", b"\xFF\xD8\xFF\xE0"),
            Ok("image/jpeg")
        );
        assert_eq!(
            check_content("application/pdf", b"%PDF-1.7"),
            Ok("application/pdf")
        );
        assert!(check_content("image/png", b"%PDF-1.7").is_err());
        assert!(check_content("text/html", b"<html>").is_err());
        assert!(check_content("image/jpeg", b"").is_err());
    }

    #[test]
    fn file_names_are_plain() {
        assert_eq!(parse_file_name(" photo.jpg "), Ok("photo.jpg".into()));
        for bad in ["", "../etc/passwd", "a\\b", "a\u{0}b", &"x".repeat(201)] {
            assert!(parse_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_disk_store_keeps_bytes_and_refuses_odd_keys() {
        let root = std::env::temp_dir().join(format!("jamaa-attachments-{}", Uuid::now_v7()));
        let store = LocalDiskStore::new(&root);
        let key = format!("{}/{}", Uuid::now_v7(), Uuid::now_v7());
        store.put(&key, b"bytes").await.expect("put");
        assert_eq!(store.get(&key).await.expect("get"), b"bytes");
        assert!(store.put("../escape", b"x").await.is_err());
        assert!(store.get("a/../../b").await.is_err());
        let _ = std::fs::remove_dir_all(root);
    }
}
