//! Unit tests of the parent module.

use futures::FutureExt;

use super::*;

#[tokio::test]
async fn a_slow_subscriber_is_closed_not_buffered() {
    let (out, mut queued) = mpsc::channel::<Message>(OUTGOING_MESSAGES);
    let slow = outbox::Slow::default();
    let outbox = Outbox {
        out,
        slow: slow.clone(),
        grace: Duration::from_millis(20),
    };
    for _ in 0..OUTGOING_MESSAGES {
        assert!(outbox.push_event(text(json!({"type": "next"}))).await);
    }
    // One more than the queue holds, and nobody drains it: refused after the grace, and
    // the close jumps the queue.
    assert!(!outbox.push_event(text(json!({"type": "next"}))).await);
    assert!(
        slow.raised().now_or_never().is_some(),
        "the slow close is asked for"
    );
    // Nothing beyond the bound was kept.
    let mut kept = 0;
    while queued.try_recv().is_ok() {
        kept += 1;
    }
    assert_eq!(kept, OUTGOING_MESSAGES);
}

#[tokio::test]
async fn a_burst_larger_than_the_queue_is_not_slowness() {
    let (out, mut queued) = mpsc::channel::<Message>(4);
    let slow = outbox::Slow::default();
    let outbox = Outbox {
        out,
        slow: slow.clone(),
        grace: Duration::from_secs(5),
    };
    let reader = tokio::spawn(async move {
        let mut read = 0;
        while queued.recv().await.is_some() {
            read += 1;
        }
        read
    });
    for _ in 0..100 {
        assert!(outbox.push_event(text(json!({"type": "next"}))).await);
    }
    drop(outbox);
    assert_eq!(reader.await.expect("reader"), 100);
    assert!(
        slow.raised().now_or_never().is_none(),
        "no close for a reader that keeps up"
    );
}
