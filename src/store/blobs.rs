//! Attachment content: streamed to a temporary file while it is hashed and counted, then moved to
//! `blobs/<first two hex digits>/<sha256>`. Equal content is stored once.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{OpError, Store, StoreError};
use crate::domain::DomainError;

/// How much of the start of a file is kept to sniff its content type.
const SNIFF_BYTES: usize = 8 * 1024;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates the content directories and removes uploads that a crash left half-written.
pub(super) fn prepare(data_dir: &Path) -> Result<(), StoreError> {
    let tmp = data_dir.join("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let blobs = data_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))
}

pub struct BlobWriter {
    file: tokio::fs::File,
    staged: StagedBlob,
    hasher: Sha256,
    limit: u64,
}

/// A fully written, flushed upload waiting to be committed. Dropping it removes the temporary file.
pub struct StagedBlob {
    temp: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// The first bytes, for content-type sniffing.
    pub head: Vec<u8>,
    committed: bool,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl StagedBlob {
    /// The content type sniffed from the first bytes.
    pub fn content_type(&self) -> String {
        sniff_content_type(&self.head)
    }
}

impl BlobWriter {
    pub async fn create(store: &Store, limit: u64) -> Result<BlobWriter, StoreError> {
        let temp = store
            .data_dir()
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let file = tokio::fs::File::create(&temp).await.map_err(io(&temp))?;
        let staged = StagedBlob {
            temp,
            sha256: String::new(),
            size: 0,
            head: Vec::new(),
            committed: false,
        };
        Ok(BlobWriter {
            file,
            staged,
            hasher: Sha256::new(),
            limit,
        })
    }

    /// Appends a chunk; refuses it once the total would pass the limit (nothing is kept then).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), OpError> {
        let size = self.staged.size + chunk.len() as u64;
        if size > self.limit {
            return Err(DomainError::AttachmentTooLarge { limit: self.limit }.into());
        }
        self.staged.size = size;
        self.hasher.update(chunk);
        if self.staged.head.len() < SNIFF_BYTES {
            let room = SNIFF_BYTES - self.staged.head.len();
            self.staged
                .head
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(io(&self.staged.temp))?;
        Ok(())
    }

    /// Flushes the file to disk and returns it with its digest.
    pub async fn finish(mut self) -> Result<StagedBlob, StoreError> {
        self.file.sync_all().await.map_err(io(&self.staged.temp))?;
        self.staged.sha256 = hex::encode(self.hasher.finalize());
        Ok(self.staged)
    }
}

/// A file's content, committed to its content address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Hex sha256 of the content; also the name of the content file.
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the first bytes, never taken from what a client claimed.
    pub content_type: String,
}

/// Guesses the content type from the file's first bytes.
pub(crate) fn sniff_content_type(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    // The head may end inside a multi-byte character; only an invalid sequence means binary.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if text {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

impl Store {
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        let shard = sha256.get(..2).unwrap_or("00");
        self.data_dir().join("blobs").join(shard).join(sha256)
    }

    /// Moves a staged upload to its content address off the async threads; when the same content
    /// is already stored, the upload is simply dropped.
    pub async fn commit_blob(
        self: &std::sync::Arc<Self>,
        staged: StagedBlob,
    ) -> Result<StoredBlob, StoreError> {
        let content_type = sniff_content_type(&staged.head);
        let size = staged.size;
        let store = std::sync::Arc::clone(self);
        let sha256 = tokio::task::spawn_blocking(move || store.commit_blob_blocking(staged))
            .await
            .map_err(|e| StoreError::Durability(format!("blob commit task failed: {e}")))??;
        Ok(StoredBlob {
            sha256,
            size,
            content_type,
        })
    }

    fn commit_blob_blocking(&self, mut staged: StagedBlob) -> Result<String, StoreError> {
        let target = self.blob_path(&staged.sha256);
        if !target.exists() {
            let dir = target.parent().expect("blob paths have a shard directory");
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::rename(&staged.temp, &target).map_err(io(&target))?;
            staged.committed = true;
            // The rename is only durable once the directory entry is.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(std::mem::take(&mut staged.sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::sniff_content_type;

    #[test]
    fn content_type_comes_from_the_bytes() {
        assert_eq!(
            sniff_content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "image/png"
        );
        assert_eq!(sniff_content_type(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff_content_type(b"hello"), "text/plain; charset=utf-8");
        assert_eq!(
            sniff_content_type(&[0xff, 0xfe, 0x00, 0x81]),
            "application/octet-stream"
        );
    }
}
