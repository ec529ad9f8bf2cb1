//! Credit: how much one side of a stream may send the other before it hears back.

use std::sync::Mutex;

use tokio::sync::Notify;

/// Credit one side granted the other: bytes for a stream, connections for a listener. One task takes from
/// it; the session adds the page's grants to it.
pub(super) struct Credit {
    /// A std mutex: held for a few instructions, never across an await.
    state: Mutex<CreditState>,
    /// The most that may be outstanding: a grant past it breaks the protocol.
    limit: u64,
    /// Wakes the one task that waits for credit; a permit is kept if it is not waiting yet.
    more: Notify,
}

pub(super) struct CreditState {
    /// Granted and not yet used.
    available: u64,
    /// Taken by the task for a send under way, not yet sent.
    reserved: u64,
}

impl Credit {
    pub(super) fn new(initial: u64, limit: u64) -> Credit {
        let state = Mutex::new(CreditState {
            available: initial,
            reserved: 0,
        });
        Credit {
            state,
            limit,
            more: Notify::new(),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, CreditState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a grant from the page; false if it goes past the limit. The page can only return what it was
    /// sent, so what it holds plus what is set aside plus the grant never exceeds the window.
    pub(super) fn grant(&self, amount: u32) -> bool {
        {
            let mut state = self.state();
            if state.available + state.reserved + u64::from(amount) > self.limit {
                return false;
            }
            state.available += u64::from(amount);
        }
        self.more.notify_one();
        true
    }

    /// Returns credit that was taken and then not used by the page after all (a connection refused).
    pub(super) fn give_back(&self, amount: u64) {
        self.state().available += amount;
        self.more.notify_one();
    }

    /// Credit the other side has used and not given back: for a listener, connections reported to the
    /// page that it has not accepted yet.
    pub(super) fn outstanding(&self) -> u64 {
        let state = self.state();
        self.limit.saturating_sub(state.available + state.reserved)
    }

    /// Waits for credit and sets aside up to `max` of it for one send.
    pub(super) async fn take(&self, max: u64) -> u64 {
        loop {
            {
                let mut state = self.state();
                if state.available > 0 {
                    let n = state.available.min(max);
                    state.available -= n;
                    state.reserved += n;
                    return n;
                }
            }
            self.more.notified().await;
        }
    }

    /// Ends a send for which `taken` was set aside: `used` of it went to the page, the rest is available.
    pub(super) fn settle(&self, taken: u64, used: u64) {
        {
            let mut state = self.state();
            state.reserved -= taken;
            state.available += taken - used;
        }
        if taken > used {
            self.more.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_grant_past_the_limit_is_refused_and_changes_nothing() {
        let credit = Credit::new(0, 10);
        assert!(credit.grant(10));
        assert!(!credit.grant(1), "11 outstanding with a limit of 10");
        assert_eq!(credit.state().available, 10);
    }

    #[tokio::test]
    async fn what_is_set_aside_counts_against_the_limit_until_settled() {
        let credit = Credit::new(10, 10);
        assert_eq!(credit.take(4).await, 4);
        assert!(
            !credit.grant(1),
            "6 available and 4 reserved: the window is full"
        );
        credit.settle(4, 3);
        assert_eq!(
            credit.state().available,
            7,
            "the byte not used is available again"
        );
        assert!(credit.grant(3));
        assert!(!credit.grant(1));
    }

    #[tokio::test]
    async fn take_waits_for_a_grant_and_never_takes_more_than_asked() {
        let credit = Arc::new(Credit::new(0, 100));
        let taker = tokio::spawn({
            let credit = credit.clone();
            async move { credit.take(30).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!taker.is_finished(), "no credit yet");
        assert!(credit.grant(50));
        assert_eq!(taker.await.unwrap(), 30);
        assert_eq!(credit.state().available, 20);
    }

    #[tokio::test]
    async fn outstanding_is_what_was_used_and_not_granted_back() {
        let credit = Credit::new(3, 3);
        assert_eq!(credit.outstanding(), 0);
        assert_eq!(credit.take(1).await, 1);
        assert_eq!(credit.outstanding(), 0, "set aside is not used yet");
        credit.settle(1, 1);
        assert_eq!(credit.outstanding(), 1);
        assert!(credit.grant(1));
        assert_eq!(credit.outstanding(), 0, "the page gave it back");
        assert_eq!(credit.take(1).await, 1);
        credit.settle(1, 1);
        credit.give_back(1);
        assert_eq!(credit.outstanding(), 0, "the relay gave it back");
    }

    #[tokio::test]
    async fn credit_given_back_wakes_a_waiting_taker() {
        let credit = Arc::new(Credit::new(1, 1));
        assert_eq!(credit.take(1).await, 1);
        credit.settle(1, 1);
        let taker = tokio::spawn({
            let credit = credit.clone();
            async move { credit.take(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        credit.give_back(1);
        let taken = tokio::time::timeout(Duration::from_secs(5), taker).await;
        assert_eq!(taken.unwrap().unwrap(), 1);
    }
}
