//! Diesel's view of the tables created by `migrations/`.

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

diesel::joinable!(samples -> steps (step_id));
diesel::allow_tables_to_appear_in_same_query!(runs, steps, step_reasons, samples, item_index);
