//! The event log of fork runs (`fork_events`): stored outside the fork's transaction so it
//! survives a rollback, read back as "the events after sequence `n`" so a follower reads only
//! what it has not seen yet.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};
use uuid::Uuid;

use crate::fork::hub::{EventKind, ForkEvent};

/// Appends `events` (of one run) to the log and rings the other replicas' doorbell.
pub async fn store(db: &impl ConnectionTrait, events: &[ForkEvent]) -> anyhow::Result<()> {
    use entity::fork_events;
    if events.is_empty() {
        return Ok(());
    }
    let runs = entity::fork_runs::Entity::find_by_id(events[0].run_id)
        .one(db)
        .await?;
    let Some(run) = runs else { return Ok(()) };
    let models = events.iter().map(|e| fork_events::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(run.tenant_id),
        run_id: Set(e.run_id),
        seq: Set(e.seq as i32),
        kind: Set(e.kind.as_str().into()),
        phase: Set(e.phase.clone()),
        class_name: Set(e.class_name.clone()),
        count: Set(e.count.map(|c| c as i32)),
        detail: Set(e.detail.clone()),
        at: Set(e.at),
    });
    // In statements of at most 1,000 events (10 parameters each): under both databases' limits
    // on bind parameters, however many events a checkpoint gathered.
    let models: Vec<_> = models.collect();
    for chunk in models.chunks(1000) {
        fork_events::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // The doorbell for followers on other replicas; the table stays the log.
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [
                crate::fork::listener::CHANNEL.into(),
                events[0].run_id.to_string().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Stored events of a run, in order.
pub async fn all(db: &impl ConnectionTrait, run_id: Uuid) -> anyhow::Result<Vec<ForkEvent>> {
    after(db, run_id, 0).await
}

/// The stored events of `run_id` whose sequence is above `after`, in order: a follower reads
/// only what it has not seen yet.
pub async fn after(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    after: i64,
) -> anyhow::Result<Vec<ForkEvent>> {
    use entity::fork_events;
    let rows = fork_events::Entity::find()
        .filter(fork_events::Column::RunId.eq(run_id))
        .filter(fork_events::Column::Seq.gt(after))
        .order_by_asc(fork_events::Column::Seq)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|e| {
            Some(ForkEvent {
                run_id: e.run_id,
                seq: e.seq.into(),
                kind: EventKind::parse(&e.kind)?,
                phase: e.phase,
                class_name: e.class_name,
                count: e.count.map(i64::from),
                detail: e.detail,
                at: e.at,
            })
        })
        .collect())
}

/// The sequence number of the last stored event of `run_id` (0 when there is none).
pub async fn last_seq(db: &impl ConnectionTrait, run_id: Uuid) -> anyhow::Result<i64> {
    use entity::fork_events;
    let last = fork_events::Entity::find()
        .filter(fork_events::Column::RunId.eq(run_id))
        .order_by_desc(fork_events::Column::Seq)
        .one(db)
        .await?;
    Ok(last.map_or(0, |e| e.seq.into()))
}
