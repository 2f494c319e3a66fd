//! Replay end to end on PostgreSQL (its own process: the default X-Ray client is set once per
//! process).

mod replay_e2e;
mod support;

#[test]
fn a_run_and_a_step_are_replayed_with_the_fix_on_postgres() {
    replay_e2e::record_then_replay_with_the_fix(support::Backend::Postgres);
}
