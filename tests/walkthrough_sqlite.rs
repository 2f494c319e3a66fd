//! The walkthrough on SQLite (its own process: the default X-Ray client is set once per process).

mod support;
mod walkthrough;

#[test]
fn the_laptop_stand_is_traced_to_the_keyword_step_on_sqlite() {
    walkthrough::follow_the_trail(support::Backend::Sqlite);
}
