//! Concurrency for one client request without spawning (Swift's
//! `GreenAsyncPile`): futures that borrow the request run together inside
//! its own task, results come back in completion order, and whatever is
//! still running when the pile is dropped is cancelled with it (its
//! backend connections close).
//!
//! Piles are small (a few backend requests), so each wake-up polls every
//! unfinished future: simpler than per-future wakers, and cheap at this
//! size.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Futures running together, yielding results as they finish.
pub struct Pile<'a, T> {
    running: Vec<Option<Boxed<'a, T>>>,
}

impl<'a, T> Default for Pile<'a, T> {
    fn default() -> Self {
        Pile {
            running: Vec::new(),
        }
    }
}

impl<'a, T> Pile<'a, T> {
    pub fn new() -> Pile<'a, T> {
        Pile::default()
    }

    /// Start `fut` (it first runs at the next poll of the pile).
    pub fn push(&mut self, fut: impl Future<Output = T> + 'a) {
        self.running.push(Some(Box::pin(fut)));
    }

    /// How many are still running.
    pub fn len(&self) -> usize {
        self.running.iter().filter(|f| f.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn poll_any(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut any = false;
        for slot in self.running.iter_mut() {
            if let Some(fut) = slot {
                any = true;
                if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                    *slot = None;
                    return Poll::Ready(Some(v));
                }
            }
        }
        if any {
            Poll::Pending
        } else {
            self.running.clear();
            Poll::Ready(None)
        }
    }

    /// The next result to finish; `None` when nothing is running.
    pub async fn next(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_any(cx)).await
    }

    /// Every result that finishes within `timeout`; the rest keep running
    /// (drop the pile to cancel them).
    pub async fn wait_all(&mut self, timeout: Duration) -> Vec<T> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_empty() {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(v)) => out.push(v),
                Ok(None) | Err(_) => break,
            }
        }
        out
    }
}

/// Run all of `futs` together; results in the order given.
pub async fn join_all<'a, T>(futs: Vec<Boxed<'a, T>>) -> Vec<T> {
    let mut slots: Vec<Option<Boxed<'a, T>>> = futs.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = slots.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn results_come_in_completion_order_and_stragglers_are_left() {
        run(async {
            let mut pile = Pile::new();
            for ms in [30u64, 10, 1000] {
                pile.push(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ms
                });
            }
            assert_eq!(pile.next().await, Some(10));
            let rest = pile.wait_all(Duration::from_millis(200)).await;
            assert_eq!(rest, vec![30]);
            assert_eq!(pile.len(), 1);
        });
    }

    #[test]
    fn join_all_keeps_order() {
        run(async {
            let futs: Vec<Boxed<'_, u64>> = vec![
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    1
                }),
                Box::pin(async { 2 }),
            ];
            assert_eq!(join_all(futs).await, vec![1, 2]);
        });
    }
}
