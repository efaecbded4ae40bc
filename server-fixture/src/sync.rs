//! Locking std mutexes: the one helper every module that shares data uses.

use std::sync::{Mutex, MutexGuard};

/// Locks a std mutex, recovering from poisoning (a panicked holder cannot corrupt our data).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
