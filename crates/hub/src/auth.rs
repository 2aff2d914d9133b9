//! Passwords (argon2id), bearer tokens (random, stored as SHA-256 hashes,
//! expiring, revocable) and the login rate limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password into an argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a PHC string. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A fresh random bearer token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database stores for a token: its SHA-256, so a leaked database
/// holds no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Counts failed logins per key (user name, client address) over a sliding
/// minute.
///
/// An attempt holds a slot ([`LoginLimiter::reserve`]) from before the
/// password check until its outcome is known, and a key's failures plus
/// its attempts in flight never exceed the limit: N parallel guesses get at
/// most `max_failures` password checks, not N.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    keys: Mutex<HashMap<String, KeyState>>,
    /// Signalled whenever an attempt ends, for attempts waiting on a slot.
    released: Notify,
}

#[derive(Debug, Default)]
struct KeyState {
    failures: VecDeque<Instant>,
    in_flight: u32,
}

/// What [`LoginLimiter::try_reserve`] found.
enum Slot {
    Taken,
    Blocked(u64),
    Busy,
}

impl LoginLimiter {
    /// A limiter allowing `max_failures` failures per key per minute.
    pub fn new(max_failures: u32) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window: Duration::from_secs(60),
            keys: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }
    }

    /// Reserves an attempt under every key, or says in how many seconds
    /// one of them may try again. When the slots are held by attempts in
    /// flight rather than by failures, waits for one to end: concurrent
    /// sign-ins with the right password are served, a few at a time.
    pub async fn reserve(&self, keys: &[String]) -> Result<LoginAttempt<'_>, u64> {
        loop {
            // Created before looking, so a release in between still wakes it.
            let released = self.released.notified();
            match self.try_reserve(keys) {
                Slot::Taken => {
                    return Ok(LoginAttempt {
                        limiter: self,
                        keys: keys.to_vec(),
                    })
                }
                Slot::Blocked(secs) => return Err(secs),
                Slot::Busy => released.await,
            }
        }
    }

    fn try_reserve(&self, keys: &[String]) -> Slot {
        let now = Instant::now();
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory under a spray of user names: forget idle keys.
        if map.len() > 10_000 {
            map.retain(|_, k| {
                k.in_flight > 0
                    || k.failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let mut wait = None;
        let mut busy = false;
        for key in keys {
            let Some(k) = map.get_mut(key) else {
                continue;
            };
            while k
                .failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                k.failures.pop_front();
            }
            let failures = k.failures.len() as u32;
            if failures >= self.max_failures {
                let oldest = k.failures.front().copied().unwrap_or(now);
                let left = self.window.saturating_sub(now.duration_since(oldest));
                let secs = left.as_secs().max(1);
                wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
            } else if failures + k.in_flight >= self.max_failures {
                busy = true;
            }
        }
        if let Some(secs) = wait {
            return Slot::Blocked(secs);
        }
        if busy {
            return Slot::Busy;
        }
        for key in keys {
            map.entry(key.clone()).or_default().in_flight += 1;
        }
        Slot::Taken
    }

    /// Ends an attempt: frees its slots, records a failure under every key
    /// or forgets the user's failures (`success_key`), and wakes waiters.
    fn finish(&self, keys: &[String], failed: bool, success_key: Option<&str>) {
        let now = Instant::now();
        {
            let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            for key in keys {
                let k = map.entry(key.clone()).or_default();
                k.in_flight = k.in_flight.saturating_sub(1);
                if failed {
                    k.failures.push_back(now);
                }
                if success_key == Some(key.as_str()) {
                    k.failures.clear();
                }
                if k.in_flight == 0 && k.failures.is_empty() {
                    map.remove(key);
                }
            }
        }
        self.released.notify_waiters();
    }
}

/// A login attempt holding its slots. Dropped without an outcome (an
/// error, a cancelled request), it frees them and counts nothing.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    limiter: &'a LoginLimiter,
    keys: Vec<String>,
}

impl LoginAttempt<'_> {
    /// The password was wrong: a failure under every key.
    pub fn failed(mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.limiter.finish(&keys, true, None);
    }

    /// The password was right: the user's failures are forgotten.
    pub fn succeeded(mut self, user_key: &str) {
        let keys = std::mem::take(&mut self.keys);
        self.limiter.finish(&keys, false, Some(user_key));
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            let keys = std::mem::take(&mut self.keys);
            self.limiter.finish(&keys, false, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("S3cret", &h));
        assert!(!verify_password("s3cret", "not-a-hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[tokio::test]
    async fn limiter_blocks_after_max_failures() {
        let l = LoginLimiter::new(3);
        let keys = vec!["user:ada".to_string(), "ip:1".to_string()];
        for _ in 0..3 {
            l.reserve(&keys).await.unwrap().failed();
        }
        assert!(l.reserve(&keys).await.is_err());
        // Another user from another address is not blocked.
        let other = ["user:bob".to_string(), "ip:2".to_string()];
        assert!(l.reserve(&other).await.is_ok());
    }

    #[tokio::test]
    async fn attempts_in_flight_hold_slots_until_they_end() {
        let l = LoginLimiter::new(2);
        let keys = vec!["user:ada".to_string(), "ip:1".to_string()];
        let a = l.reserve(&keys).await.unwrap();
        let b = l.reserve(&keys).await.unwrap();
        // A third waits for a slot rather than guessing in parallel.
        assert!(matches!(l.try_reserve(&keys), Slot::Busy));
        a.failed();
        drop(b); // an error: frees the slot, counts nothing
        l.reserve(&keys).await.unwrap().succeeded("user:ada");
        // The user's failure is forgotten; the address's stays.
        l.reserve(&keys).await.unwrap().failed();
        assert!(l.reserve(&keys).await.is_err());
    }
}
