//! Group commit: many writers wait for one fsync. A writer applies its transaction in memory, then
//! waits here; the commit thread flushes once for everyone who asked before the flush began, so a
//! 2xx still means "on disk" while durability costs one fsync per batch, not per request.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<usize, String>>;

pub(crate) struct GroupCommit {
    tx: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    pub(super) fn start(
        db: sled::Db,
        batches: prometheus_client::metrics::counter::Counter,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("deskbridge-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = db.flush().map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "store flush failed");
                    }
                    batches.inc();
                    for waiter in batch {
                        // The writer may have gone away (client disconnected); its data is still flushed.
                        let _ = waiter.send(result.clone());
                    }
                }
            })?;
        Ok(GroupCommit {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Resolves once everything written before the call is on disk.
    pub(super) async fn wait(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .expect("the sender lives until drop")
            .send(tx)
            .map_err(|_| "commit thread stopped".to_owned())?;
        rx.await
            .map_err(|_| "commit thread stopped".to_owned())?
            .map(|_| ())
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel ends the thread; joining it releases its handle on the database, so
        // the same data dir can be opened again as soon as the store is dropped.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
