//! Unit tests of the parent module.

use futures::FutureExt;

use super::*;

#[tokio::test]
async fn a_slow_subscriber_is_closed_not_buffered() {
    let (out, mut queued) = Queue::new();
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
    while let Some(write) = queued.try_recv() {
        kept += write.messages();
    }
    assert_eq!(kept, OUTGOING_MESSAGES);
}

#[tokio::test]
async fn a_burst_larger_than_the_queue_is_not_slowness() {
    let (out, mut queued) = Queue::bounded(4);
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

#[tokio::test]
async fn the_events_of_one_publication_are_one_write_in_order() {
    let (out, mut queued) = Queue::bounded(8);
    let outbox = Outbox {
        out,
        slow: outbox::Slow::default(),
        grace: Duration::from_millis(20),
    };
    let published = std::time::Instant::now();
    let frames: Vec<outbox::Frame> = (1..=5)
        .map(|i| (text(json!({"seq": i})), Some(published)))
        .collect();
    assert!(outbox.push_events(frames).await);
    assert!(
        outbox.push_events(Vec::new()).await,
        "nothing to write is no write"
    );
    assert!(outbox.push_event(text(json!({"seq": 6}))).await);
    let Some(outbox::Outgoing::Frames(first)) = queued.try_recv() else {
        panic!("the publication's frames are one write");
    };
    assert!(
        first.iter().all(|(_, at)| *at == Some(published)),
        "each frame keeps its event's time"
    );
    let seqs: Vec<String> = first
        .iter()
        .map(|(m, _)| match m {
            Message::Text(t) => t.to_string(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=5)
            .map(|i| json!({"seq": i}).to_string())
            .collect::<Vec<_>>()
    );
    assert!(matches!(
        queued.try_recv(),
        Some(outbox::Outgoing::One(Message::Text(_)))
    ));
    assert!(queued.try_recv().is_none(), "two writes, not six");
}

#[tokio::test]
async fn grouped_events_count_one_by_one_against_the_bound() {
    let (out, mut queued) = Queue::bounded(OUTGOING_MESSAGES);
    let slow = outbox::Slow::default();
    let outbox = Outbox {
        out,
        slow: slow.clone(),
        grace: Duration::from_millis(20),
    };
    // A publication of more events than the queue holds, and nobody drains it: what fits is
    // kept (in writes of a few dozen), the rest is refused after the grace as slow.
    let frames: Vec<outbox::Frame> = (0..OUTGOING_MESSAGES + 10)
        .map(|i| (text(json!({"seq": i})), None))
        .collect();
    assert!(!outbox.push_events(frames).await);
    assert!(slow.raised().now_or_never().is_some(), "closed as slow");
    let mut kept = 0;
    while let Some(write) = queued.try_recv() {
        kept += write.messages();
    }
    assert_eq!(kept, OUTGOING_MESSAGES, "no more than the bound waits");
    // Once the writer is gone, nothing waits for room: the sender is told at once.
    drop(queued);
    let (out, queued) = Queue::bounded(1);
    drop(queued);
    assert!(out.send(text(json!({}))).await.is_err());
}
