//! Events fitted to the server's rule for names and text ([`xray_wire::fit_name`],
//! [`xray_wire::fit_text`]) before they leave: the server refuses a whole event for one bad
//! name, so an empty or overlong item id, or a NUL in an error, would lose the step (or leave its
//! run `running`). Runs on the shipper's thread, where events are laid out. Rejection reasons are
//! fitted when a recorder first sees them (`sampling.rs`), so reasons that fit to one name are
//! counted and sampled as one.

use xray_wire::{fit_name_in_place, fit_text_in_place, Event, ItemId, StepRecord};

/// Makes every name and text of `event` that the server checks valid; leaves valid ones as they
/// are, without allocating.
pub(crate) fn fit_event(event: &mut Event) {
    match event {
        // Run ids, pipelines, step ids and names are [`xray_wire::Name`]s, fitted when made.
        Event::RunStarted(_) => {}
        Event::RunFinished(e) => {
            if let Some(error) = &mut e.error {
                fit_text_in_place(error);
            }
        }
        Event::StepFinished(e) => fit_step(&mut e.step),
    }
}

fn fit_step(step: &mut StepRecord) {
    if let Some(error) = &mut step.error {
        fit_text_in_place(error);
    }
    let decision = step.decision.iter_mut();
    let chosen = decision.flat_map(|d| d.selected.iter_mut().chain(&mut d.runner_up));
    let ranked = step.ranking.iter_mut().flat_map(|r| &mut r.samples);
    let kept = step.rejections.values_mut().chain([&mut step.acceptances]);
    let sampled = kept.flat_map(|s| &mut s.samples);
    let ids = chosen
        .chain(ranked.map(|s| &mut s.item_id))
        .chain(sampled.map(|s| &mut s.item_id));
    ids.for_each(|ItemId(id)| fit_name_in_place(id));
}
