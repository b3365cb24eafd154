//! Password hashing (S4): bcrypt on a small dedicated thread pool, so a burst of logins queues
//! there instead of starving the async runtime that serves everything else.
//!
//! bcrypt reads at most 72 bytes. Rather than truncate silently, every password is first reduced
//! to base64(SHA-256(password)) — 44 ASCII bytes, no NUL — so the whole input always counts.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::CryptoError;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone, Copy, Debug)]
pub struct PasswordHasherConfig {
    /// bcrypt cost; 10 is the floor (S4).
    pub cost: u32,
    pub threads: usize,
}

impl Default for PasswordHasherConfig {
    fn default() -> Self {
        let cores = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self { cost: 10, threads: (cores / 2).max(1) }
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    cost: u32,
    /// A hash of a random password, verified against when the account does not exist so that
    /// known and unknown emails take the same time.
    dummy: Arc<String>,
}

fn prehash(password: &str) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(Sha256::digest(password.as_bytes())))
}

impl PasswordHasher {
    pub fn new(config: PasswordHasherConfig) -> Self {
        let cost = config.cost.max(10);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..config.threads.max(1) {
            let rx = Arc::clone(&rx);
            thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn bcrypt thread");
        }
        let dummy = bcrypt::hash(prehash(&crate::random_token()).as_str(), cost).expect("bcrypt of a fixed-size input");
        Self { jobs: tx, cost, dummy: Arc::new(dummy) }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, CryptoError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| CryptoError::Hashing("hashing pool stopped".into()))?;
        rx.await.map_err(|_| CryptoError::Hashing("hashing job dropped".into()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let input = prehash(password);
        let cost = self.cost;
        self.run(move || bcrypt::hash(input.as_str(), cost)).await?.map_err(|e| CryptoError::Hashing(e.to_string()))
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is no account,
    /// returning false then; both paths cost one bcrypt.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let input = prehash(password);
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy.as_ref().clone(), false),
        };
        let ok = self.run(move || bcrypt::verify(input.as_str(), &hash).unwrap_or(false)).await.unwrap_or(false);
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_passwords_are_not_truncated() {
        let hasher = PasswordHasher::new(PasswordHasherConfig { cost: 10, threads: 1 });
        let base = "a".repeat(80);
        let hash = hasher.hash(&format!("{base}1")).await.unwrap();
        assert!(hasher.verify(&format!("{base}1"), Some(&hash)).await);
        // Differs only after byte 72: plain bcrypt would accept it.
        assert!(!hasher.verify(&format!("{base}2"), Some(&hash)).await);
        assert!(!hasher.verify(&format!("{base}1"), None).await);
        assert!(hash.starts_with("$2b$10$"));
    }
}
