//! The fork (`docs/fork.md`): the engine, run orchestration and the progress hub.

pub mod diff;
pub mod engine;
pub mod fleet;
pub mod hub;
pub mod lineage;
pub mod listener;
pub mod progress;
pub mod runs;
pub mod runtime;
pub mod upgrade;
pub mod versions;
