//! Events fitted to the server's rule for names and text ([`xray_wire::fit_name`],
//! [`xray_wire::fit_text`]) before they leave: the server refuses a whole event for one bad
//! name, so an empty or overlong reason or item id, or a NUL in an error, would lose the step
//! (or leave its run `running`). Runs on the shipper's thread, where events are laid out; the
//! pipeline's thread records names as they are given.

use std::collections::BTreeMap;
use xray_wire::{
    fit_name_in_place, fit_text_in_place, name_is_valid, Capture, Event, ItemId, ReasonSummary,
    StepRecord, SAMPLES_PER_REASON,
};

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
    if let Some(d) = &mut step.decision {
        d.selected
            .iter_mut()
            .chain(&mut d.runner_up)
            .for_each(fit_item);
    }
    if let Some(ranking) = &mut step.ranking {
        ranking
            .samples
            .iter_mut()
            .for_each(|s| fit_item(&mut s.item_id));
    }
    fit_samples(&mut step.acceptances);
    if !step.rejections.keys().all(|r| name_is_valid(r)) {
        step.rejections = refit_reasons(std::mem::take(&mut step.rejections), step.capture);
    }
    for summary in step.rejections.values_mut() {
        fit_samples(summary);
    }
}

fn fit_item(id: &mut ItemId) {
    fit_name_in_place(&mut id.0);
}

fn fit_samples(summary: &mut ReasonSummary) {
    for sample in &mut summary.samples {
        fit_item(&mut sample.item_id);
    }
}

/// The rejections with every reason fitted; reasons that fit to the same name are merged (their
/// counts summed, their samples kept up to the capture level's cap per reason).
fn refit_reasons(
    rejections: BTreeMap<String, ReasonSummary>,
    capture: Capture,
) -> BTreeMap<String, ReasonSummary> {
    let cap = match capture {
        Capture::Minimal => 0,
        Capture::Sample => SAMPLES_PER_REASON,
        Capture::Full => usize::MAX,
    };
    let mut fitted: BTreeMap<String, ReasonSummary> = BTreeMap::new();
    for (mut reason, summary) in rejections {
        fit_name_in_place(&mut reason);
        match fitted.get_mut(&reason) {
            Some(into) => merge(into, summary, cap),
            None => {
                fitted.insert(reason, summary);
            }
        }
    }
    fitted
}

/// Adds `from` to `into`: the counts summed, the samples of both kept up to `cap`, shared in
/// proportion to the counts (as one reservoir over both would share them) and spread over each
/// one's samples (which are in order of arrival).
fn merge(into: &mut ReasonSummary, from: ReasonSummary, cap: usize) {
    let total = into.count.saturating_add(from.count);
    let (a, b) = (into.samples.len(), from.samples.len());
    if a + b <= cap {
        into.samples.extend(from.samples);
    } else {
        let share = (cap as u128 * into.count as u128 / u128::from(total.max(1))) as usize;
        // More from one side when the other has too few (`a + b > cap`, so the bounds hold).
        let keep_a = share.clamp(cap.saturating_sub(b), a.min(cap));
        let keep_b = cap - keep_a;
        let mut samples = spread(std::mem::take(&mut into.samples), keep_a);
        samples.extend(spread(from.samples, keep_b));
        into.samples = samples;
    }
    into.count = total;
}

/// `n` of `items`, evenly spaced, in their order.
fn spread<T>(items: Vec<T>, n: usize) -> Vec<T> {
    let len = items.len();
    if n >= len {
        return items;
    }
    // Index `i * len / n` for i in 0..n: increasing, distinct, within `len`.
    let mut next = 0;
    items
        .into_iter()
        .enumerate()
        .filter_map(|(at, item)| {
            if next < n && at == next * len / n {
                next += 1;
                Some(item)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_wire::{Sample, MAX_NAME_LEN};

    fn summary(count: u64, ids: std::ops::Range<u32>) -> ReasonSummary {
        ReasonSummary {
            count,
            samples: ids
                .map(|i| Sample {
                    item_id: ItemId::from(i),
                    details: None,
                })
                .collect(),
        }
    }

    #[test]
    fn reasons_that_fit_to_one_name_are_merged_exactly() {
        let long = "r".repeat(600);
        let longer = "r".repeat(700);
        let mut rejections = BTreeMap::new();
        rejections.insert(String::new(), summary(3, 0..3));
        rejections.insert("(empty)".into(), summary(2, 3..5));
        rejections.insert(long, summary(10, 10..20));
        rejections.insert(longer, summary(5, 20..25));
        rejections.insert("ok".into(), summary(1, 30..31));
        let fitted = refit_reasons(rejections, Capture::Full);
        assert_eq!(fitted.len(), 3);
        assert_eq!(fitted["(empty)"].count, 5);
        assert_eq!(fitted["(empty)"].samples.len(), 5);
        let cut = fitted.keys().find(|k| k.starts_with('r')).unwrap();
        assert!(cut.len() <= MAX_NAME_LEN && cut.ends_with('…'));
        assert_eq!(fitted[cut].count, 15);
        assert_eq!(fitted[cut].samples.len(), 15, "full keeps every sample");
        assert_eq!(fitted["ok"].count, 1);
    }

    #[test]
    fn merged_samples_stay_within_the_cap_in_proportion() {
        let mut into = summary(300, 0..50);
        merge(&mut into, summary(100, 100..150), SAMPLES_PER_REASON);
        assert_eq!(into.count, 400);
        assert_eq!(into.samples.len(), SAMPLES_PER_REASON);
        let from_b = into
            .samples
            .iter()
            .filter(|s| s.item_id.as_str().len() == 3)
            .count();
        assert_eq!(
            from_b, 13,
            "a quarter of the events, a quarter of the samples"
        );
        // One side short of its share: the other makes up the rest.
        let mut into = summary(1000, 0..50);
        merge(&mut into, summary(1000, 100..110), SAMPLES_PER_REASON);
        assert_eq!(into.samples.len(), SAMPLES_PER_REASON);
        assert_eq!(into.count, 2000);
        // At minimal nothing is kept.
        let mut into = summary(4, 0..0);
        merge(&mut into, summary(6, 0..0), 0);
        assert_eq!((into.count, into.samples.len()), (10, 0));
    }

    #[test]
    fn spread_keeps_evenly_spaced_items_in_order() {
        assert_eq!(spread((0..10).collect(), 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread((0..10).collect(), 3), vec![0, 3, 6]);
        assert_eq!(spread((0..3).collect(), 5), vec![0, 1, 2]);
        assert!(spread((0..3).collect::<Vec<_>>(), 0).is_empty());
    }
}
