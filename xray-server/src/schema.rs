//! Diesel's view of the tables created by `migrations/`. Kept by hand in step with the
//! migrations; it must not differ from what they create.

diesel::table! {
    /// One pipeline execution.
    runs (run_id) {
        run_id -> Text,
        pipeline -> Text,
        status -> Text,
        input -> Nullable<Text>,
        output -> Nullable<Text>,
        error -> Nullable<Text>,
        metadata -> Nullable<Text>,
        started_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        duration_ms -> Nullable<Double>,
        correlation_id -> Nullable<Text>,
        trace_id -> Nullable<Text>,
        traceparent -> Nullable<Text>,
        version -> Nullable<Text>,
        replay_of -> Nullable<Text>,
        rolled_up -> Bool,
    }
}

diesel::table! {
    /// One step of a run.
    steps (step_id) {
        step_id -> Text,
        run_id -> Text,
        pipeline -> Text,
        position -> Integer,
        name -> Text,
        step_type -> Text,
        capture -> Text,
        input_count -> Nullable<BigInt>,
        output_count -> Nullable<BigInt>,
        rejected_count -> BigInt,
        accepted_count -> BigInt,
        rejection_rate -> Nullable<Double>,
        started_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        duration_ms -> Nullable<Double>,
        input -> Nullable<Text>,
        output -> Nullable<Text>,
        decision -> Nullable<Text>,
        decision_selected -> Nullable<Text>,
        decision_score -> Nullable<Double>,
        error -> Nullable<Text>,
        attributes -> Nullable<Text>,
        step_key -> Nullable<BigInt>,
        item_doc -> Nullable<BigInt>,
        ranking -> Nullable<Text>,
        rank_margin -> Nullable<Double>,
    }
}

diesel::table! {
    /// Exact counts per step, outcome and reason.
    step_reasons (step_id, outcome, reason) {
        step_id -> Text,
        outcome -> Text,
        reason -> Text,
        count -> BigInt,
        samples -> Nullable<Binary>,
    }
}

diesel::table! {
    /// Item lookups across runs: `hash(item_id) << 32 | hash(step_id)` per kept sample.
    item_index (entry) {
        entry -> BigInt,
    }
}

diesel::table! {
    /// SQLite only: the item index's documents (an FTS5 table; see `store::items`).
    item_fts (rowid) {
        rowid -> BigInt,
        items -> Text,
    }
}

diesel::table! {
    /// PostgreSQL only: the item index's documents (GIN-indexed; see `store::items`).
    item_docs (doc) {
        doc -> BigInt,
        items -> Array<Integer>,
    }
}

diesel::table! {
    /// PostgreSQL only: the item index's packed batches (see `store::item_batches`).
    item_batches (batch) {
        batch -> BigInt,
        bits -> Integer,
        postings -> BigInt,
        docs -> BigInt,
        min_doc -> BigInt,
        max_doc -> BigInt,
    }
}

diesel::table! {
    /// PostgreSQL only: one bucket of a packed batch, `slot = batch << 20 | bucket`.
    item_postings (slot) {
        slot -> BigInt,
        postings -> Binary,
    }
}

diesel::table! {
    /// Kept item events.
    samples (step_id, outcome, reason, seq) {
        step_id -> Text,
        outcome -> Text,
        reason -> Text,
        seq -> Integer,
        run_id -> Text,
        item_id -> Text,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    /// Alert rules.
    alerts (alert_id) {
        alert_id -> Text,
        name -> Text,
        rule -> Text,
        webhook_url -> Text,
        source -> Text,
        created_at -> BigInt,
        firing_key -> Nullable<Text>,
    }
}

diesel::table! {
    /// Alert firings, one per rule and window.
    alert_events (alert_id, window_key) {
        alert_id -> Text,
        window_key -> Text,
        fired_at -> BigInt,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<BigInt>,
        next_attempt_at -> BigInt,
        claimed_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Per pipeline, hour and version: the finished runs started in that hour.
    run_rollups (pipeline, hour, version) {
        pipeline -> Text,
        hour -> BigInt,
        version -> Text,
        runs -> BigInt,
        failed -> BigInt,
        first_run_at -> BigInt,
        last_run_at -> BigInt,
    }
}

diesel::table! {
    /// Per pipeline, hour, step name and version: the figures of those runs' steps, their
    /// rejection counts by reason included.
    step_rollups (pipeline, hour, step, version) {
        pipeline -> Text,
        hour -> BigInt,
        step -> Text,
        version -> Text,
        step_type -> Text,
        steps -> BigInt,
        runs -> BigInt,
        failed -> BigInt,
        input_count -> BigInt,
        output_count -> BigInt,
        rejected_in -> BigInt,
        position_sum -> BigInt,
        score_sum -> Double,
        score_count -> BigInt,
        durations -> Binary,
        reasons -> Binary,
    }
}

diesel::joinable!(samples -> steps (step_id));
diesel::allow_tables_to_appear_in_same_query!(
    runs,
    steps,
    step_reasons,
    samples,
    item_index,
    item_fts,
    item_docs,
    item_batches,
    item_postings
);
