//! Unit tests of the parent module.

use super::*;

#[tokio::test]
async fn a_slow_subscriber_is_closed_not_buffered() {
    let (out, mut queued) = mpsc::channel::<Message>(OUTGOING_MESSAGES);
    let (urgent, mut closing) = mpsc::channel::<Message>(1);
    let outbox = Outbox {
        out,
        urgent,
        grace: Duration::from_millis(20),
    };
    for _ in 0..OUTGOING_MESSAGES {
        assert!(outbox.push_event(text(json!({"type": "next"}))).await);
    }
    // One more than the queue holds, and nobody drains it: refused after the grace, and
    // the close jumps the queue.
    assert!(!outbox.push_event(text(json!({"type": "next"}))).await);
    match closing.try_recv() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, SLOW_CONSUMER_CLOSE),
        other => panic!("expected a close frame, got {other:?}"),
    }
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
    let (urgent, mut closing) = mpsc::channel::<Message>(1);
    let outbox = Outbox {
        out,
        urgent,
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
        closing.try_recv().is_err(),
        "no close for a reader that keeps up"
    );
}
