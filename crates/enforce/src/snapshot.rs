//! A value an enforcement point reads on every request and replaces whole now and then:
//! the policy set in force, the live grants, the signing key ring. Readers take an `Arc`
//! and never hold the lock while they use it; a writer swaps in a new value.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Snapshot<T> {
    slot: RwLock<Arc<T>>,
}

impl<T> Snapshot<T> {
    pub fn new(value: T) -> Self {
        Self {
            slot: RwLock::new(Arc::new(value)),
        }
    }

    /// The value now.
    pub fn current(&self) -> Arc<T> {
        match self.slot.read() {
            Ok(v) => v.clone(),
            // A writer that panicked left a whole value behind (a swap cannot half-happen).
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in place.
    pub fn replace(&self, value: T) {
        self.replace_if(value, |_, _| true);
    }

    /// Puts `value` in place if `newer(&value, &current)`, deciding under the lock so two
    /// writers racing cannot put an older value back. Returns whether it did.
    pub fn replace_if(&self, value: T, newer: impl FnOnce(&T, &T) -> bool) -> bool {
        let mut slot = match self.slot.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if newer(&value, &slot) {
            *slot = Arc::new(value);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_value_never_replaces_a_newer_one() {
        let s = Snapshot::new(3);
        assert!(!s.replace_if(2, |new, old| new > old));
        assert_eq!(*s.current(), 3);
        assert!(s.replace_if(4, |new, old| new > old));
        assert_eq!(*s.current(), 4);
        s.replace(1);
        assert_eq!(*s.current(), 1);
    }
}
