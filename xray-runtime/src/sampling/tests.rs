//! The sampler's tests: exact counts, reservoirs uniform over the whole step and across merges, reasons
//! told apart by text, capture levels, compaction and the truncation marker.

use super::*;

use serde_json::{json, Value};
use std::cell::Cell;

fn rec(capture: Capture, seed: u64) -> Recorder {
    Recorder::new(capture, 4096, seed, Arc::default())
}

fn ids(summary: &ReasonSummary) -> Vec<u64> {
    summary
        .samples
        .iter()
        .map(|s| s.item_id.as_str().parse().unwrap())
        .collect()
}

/// Details that count how often they are serialised.
struct Counted<'a>(&'a Cell<u64>);

impl Serialize for Counted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.set(self.0.get() + 1);
        s.serialize_u64(self.0.get())
    }
}

#[test]
fn details_are_serialised_only_for_kept_events() {
    for (capture, kept) in [(Capture::Minimal, 0), (Capture::Full, 5000)] {
        let calls = Cell::new(0);
        let mut r = rec(capture, 3);
        for i in 0..5000u64 {
            r.reject(i, "r", &Counted(&calls));
        }
        assert_eq!(calls.get(), kept, "{capture:?}");
    }
    // At `sample`: the reservoir's fill, then about 50 × ln(5000 / 50) replacements.
    let calls = Cell::new(0);
    let mut r = rec(Capture::Sample, 3);
    for i in 0..5000u64 {
        r.reject(i, "r", &Counted(&calls));
    }
    assert!((50..600).contains(&calls.get()), "{}", calls.get());
    let rej = r.rejections();
    assert_eq!(rej["r"].count, 5000);
    assert_eq!(rej["r"].samples.len(), SAMPLES_PER_REASON);
}

#[test]
fn counts_are_exact_and_samples_capped_per_reason() {
    let mut r = rec(Capture::Sample, 7);
    for i in 0..5000u64 {
        let reason = ["price", "rating", "category"][(i % 3) as usize];
        r.reject(i, reason, &json!({"i": i}));
    }
    r.accept::<Value>(1u64, None);
    let rej = r.rejections();
    assert_eq!(rej.values().map(|s| s.count).sum::<u64>(), 5000);
    assert_eq!(rej["price"].count, 1667);
    for s in rej.values() {
        assert_eq!(s.samples.len(), SAMPLES_PER_REASON);
        for sample in &s.samples {
            let details = sample.details.as_ref().unwrap().to_value();
            assert_eq!(details["i"].to_string(), sample.item_id.as_str());
        }
    }
    assert_eq!(r.acceptances().count, 1);
}

#[test]
fn the_reservoir_samples_the_whole_step_not_just_the_start() {
    let mut r = rec(Capture::Sample, 42);
    for i in 0..10_000u64 {
        r.reject(i, "x", &());
    }
    let kept = ids(&r.rejections()["x"]);
    // Uniform over 0..10000: about half past the middle, few among the first 50.
    let late = kept.iter().filter(|&&i| i >= 5000).count();
    assert!((12..=38).contains(&late), "{late} of 50: {kept:?}");
    assert!(kept.iter().filter(|&&i| i < 50).count() <= 3, "{kept:?}");
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "in arrival order");
}

fn room_of(accept: bool) -> usize {
    if accept {
        ACCEPTANCES_KEPT
    } else {
        SAMPLES_PER_REASON
    }
}

/// How often each event of `n` (recorded as rejections, or as acceptances) was kept over
/// `trials` steps.
fn times_kept(n: u64, trials: u64, accept: bool) -> Vec<u64> {
    let mut times = vec![0u64; n as usize];
    for seed in 0..trials {
        let mut r = rec(Capture::Sample, seed * 7919 + 1);
        for i in 0..n {
            if accept {
                r.accept::<()>(i, None);
            } else {
                r.reject(i, "x", &());
            }
        }
        let summary = if accept {
            r.acceptances()
        } else {
            r.rejections().remove("x").unwrap()
        };
        let kept = ids(&summary);
        assert_eq!(kept.len() as u64, n.min(room_of(accept) as u64));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in arrival order");
        for i in kept {
            times[i as usize] += 1;
        }
    }
    times
}

/// Pearson's chi-square of how often the events of each of `buckets` equal runs were kept,
/// against the same number for all.
fn chi_square(times: &[u64], buckets: usize) -> f64 {
    let per = times.len() / buckets;
    let sums: Vec<f64> = times
        .chunks(per)
        .map(|c| c.iter().sum::<u64>() as f64)
        .collect();
    let expected = sums.iter().sum::<f64>() / sums.len() as f64;
    sums.iter()
        .map(|s| (s - expected) * (s - expected) / expected)
        .sum()
}

#[test]
fn every_event_has_the_same_chance_to_be_kept() {
    // Each event of n is kept k/n of the time, at any n (the sampler cannot know when the
    // step ends): checked per run of events with Pearson's chi-square (20 runs, 19 degrees
    // of freedom: 43.8 is exceeded one time in a thousand by chance).
    for (n, trials, accept) in [
        (2_000, 400, false),
        (51, 2_000, false),
        (120, 1_000, false),
        (20_000, 200, false),
        (575, 100, true),
        (5_000, 100, true),
    ] {
        let times = times_kept(n, trials, accept);
        let k = room_of(accept) as f64;
        let expected = trials as f64 * k / n as f64;
        let buckets = if n < 100 { n as usize / 3 } else { 20 };
        let chi = chi_square(&times[..times.len() / buckets * buckets], buckets);
        assert!(chi < 43.8, "n {n}, accept {accept}: chi-square {chi:.1}");
        // The first events (the reservoir's fill) and the last ones, as often as the rest.
        let first = times[..k as usize].iter().sum::<u64>() as f64 / k;
        let last = times[times.len() - k as usize..].iter().sum::<u64>() as f64 / k;
        for (which, mean) in [("first", first), ("last", last)] {
            assert!(
                (mean - expected).abs() < 4.0 * (expected / k).sqrt() + 1e-9,
                "n {n}: the {which} events were kept {mean:.2} times each, not {expected:.2}"
            );
        }
    }
    // Below the reservoir's size everything is kept, every time.
    assert!(times_kept(50, 3, false).iter().all(|&t| t == 3));
}

#[test]
fn events_after_counted_only_rejections_are_kept_as_often_as_with_items() {
    // 100 events with items, 9,900 counted without, 10,000 with: the last 10,000 are half
    // of the step's events, so about half of the samples come from them.
    let mut late = 0;
    let trials = 300;
    for seed in 0..trials {
        let mut r = rec(Capture::Sample, seed + 1);
        for i in 0..100u64 {
            r.reject(i, "x", &());
        }
        r.reject_count("x", 9_900);
        for i in 100..10_100u64 {
            r.reject(i, "x", &());
        }
        let rej = r.rejections();
        assert_eq!(rej["x"].count, 20_000);
        let kept = ids(&rej["x"]);
        assert_eq!(kept.len(), SAMPLES_PER_REASON);
        late += kept.iter().filter(|&&i| i >= 100).count();
    }
    let share = late as f64 / (trials as f64 * SAMPLES_PER_REASON as f64);
    assert!((0.47..0.53).contains(&share), "{share}");
}

#[test]
fn minimal_keeps_counts_and_full_keeps_everything() {
    let mut min = rec(Capture::Minimal, 1);
    let mut full = rec(Capture::Full, 1);
    for i in 0..300u64 {
        min.reject(i, "r", &());
        full.reject(i, "r", &());
    }
    assert_eq!(min.rejections()["r"].samples.len(), 0);
    let all = full.rejections();
    assert_eq!(all["r"].count, 300);
    assert_eq!(ids(&all["r"]), (0..300).collect::<Vec<_>>());
}

#[test]
fn every_kind_of_id_comes_back_as_its_text() {
    let mut r = rec(Capture::Full, 1);
    r.reject(7u8, "r", &("k", 1));
    r.reject(u64::MAX, "r", &());
    r.reject(-5i64, "r", &());
    r.reject(u128::MAX, "r", &());
    r.reject("sku-9", "r", &("k", 3));
    r.accept::<()>(&12usize, None);
    r.accept(ItemId("x".into()), Some(&("k", 4)));
    let kept: Vec<(String, Option<String>)> = r.rejections()["r"]
        .samples
        .iter()
        .map(|s| {
            (
                s.item_id.0.clone(),
                s.details.as_ref().map(|d| d.get().into()),
            )
        })
        .collect();
    let expected = [
        ("7".to_owned(), Some(r#"["k",1]"#.to_owned())),
        (u64::MAX.to_string(), None),
        ("-5".to_owned(), None),
        (u128::MAX.to_string(), None),
        ("sku-9".to_owned(), Some(r#"["k",3]"#.to_owned())),
    ];
    assert_eq!(kept, expected);
    let accepted = r.acceptances();
    let accepted: Vec<&str> = accepted
        .samples
        .iter()
        .map(|s| s.item_id.as_str())
        .collect();
    assert_eq!(accepted, ["12", "x"]);
}

#[test]
fn a_reason_is_its_text_however_it_is_given() {
    let mut r = rec(Capture::Sample, 1);
    // A reused buffer: the same address and length, other text.
    let mut buf = String::with_capacity(16);
    for name in ["aaa", "bbb", "aaa", "ccc"] {
        buf.clear();
        buf.push_str(name);
        r.reject(1u64, &buf, &());
    }
    // A literal, the same text as a `String`, and a literal that starts where it does.
    let literal = "aaaaaaaa";
    for i in 0..30u64 {
        r.reject(i, literal, &());
        r.reject(i, &String::from("aaaaaaaa"), &());
        r.reject(i, &literal[..3], &());
    }
    let rej = r.rejections();
    assert_eq!(rej["aaa"].count, 2 + 30);
    assert_eq!(rej["bbb"].count, 1);
    assert_eq!(rej["ccc"].count, 1);
    assert_eq!(
        rej["aaaaaaaa"].count, 60,
        "the literal and the String together"
    );
}

#[test]
fn reasons_that_fit_to_one_name_are_counted_and_sampled_as_one() {
    let mut r = rec(Capture::Full, 1);
    let (long, longer) = ("r".repeat(600), "r".repeat(700));
    for (i, reason) in ["", "(empty)", &long, &longer, ""].into_iter().enumerate() {
        r.reject(i as u64, reason, &());
    }
    r.reject_count(&long, 10);
    let rej = r.rejections();
    assert_eq!(rej.len(), 2, "{:?}", rej.keys());
    assert_eq!(rej["(empty)"].count, 3);
    assert_eq!(ids(&rej["(empty)"]), [0, 1, 4]);
    let cut = rej.keys().find(|k| k.starts_with('r')).unwrap();
    assert!(cut.len() <= xray_wire::MAX_NAME_LEN && cut.ends_with('…'));
    assert_eq!((rej[cut].count, ids(&rej[cut])), (12, vec![2, 3]));
}

#[test]
fn reasons_one_byte_apart_are_told_apart_at_every_length() {
    let text = "abcdefghijklmnopqrstuvwxyz";
    for n in 1..=text.len() {
        let a = &text[..n];
        let mut r = rec(Capture::Minimal, 1);
        for i in 0..n {
            let mut b = a.as_bytes().to_vec();
            b[i] = b'_';
            r.reject(0u64, a, &());
            r.reject(0u64, std::str::from_utf8(&b).expect("ASCII"), &());
            r.reject(0u64, &String::from(a), &()); // the same text elsewhere in memory
        }
        let rej = r.rejections();
        assert_eq!(rej.len(), n + 1, "{a}: {:?}", rej.keys());
        assert_eq!(rej[a].count, 2 * n as u64, "{a}");
    }
}

#[test]
fn many_reasons_are_counted_exactly_in_any_order() {
    let reasons: Vec<String> = (0..100).map(|k| format!("reason_{k}")).collect();
    let mut r = rec(Capture::Sample, 7);
    let (mut x, mut want) = (1u64, vec![0u64; 100]);
    for i in 0..30_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly the first nine (scanned, then past the scan), now and then any of 100.
        let k = if i % 10 == 0 { x % 100 } else { x % 9 } as usize;
        want[k] += 1;
        r.reject(i, &reasons[k], &());
    }
    r.reject_count("reason_5", 10);
    want[5] += 10;
    let rej = r.rejections();
    assert_eq!(rej.len(), 100);
    for (k, reason) in reasons.iter().enumerate() {
        assert_eq!(rej[reason].count, want[k], "{reason}");
    }
}

#[test]
fn replaced_samples_are_compacted_away() {
    let mut r = rec(Capture::Sample, 5);
    let pad = "x".repeat(300);
    for i in 0..20_000u64 {
        let details = json!({"i": i, "pad": pad});
        r.reject(i, ["a", "b"][(i % 2) as usize], &details);
        assert!(r.dead <= COMPACT_AFTER.max(r.text.len() / 2));
    }
    // 100 live samples of ~330 bytes, however many were written and replaced.
    assert!(
        r.text.len() < 2 * COMPACT_AFTER + 100 * 400,
        "{}",
        r.text.len()
    );
    let rej = r.rejections();
    for (reason, parity) in [("a", 0), ("b", 1)] {
        assert_eq!(rej[reason].count, 10_000);
        assert_eq!(rej[reason].samples.len(), SAMPLES_PER_REASON);
        for s in &rej[reason].samples {
            let i: u64 = s.item_id.as_str().parse().unwrap();
            assert_eq!(i % 2, parity);
            let details = s.details.as_ref().unwrap().to_value();
            assert_eq!(details["i"], i, "the details kept with their item");
        }
    }
}

#[test]
fn two_recorders_merge_in_order_of_arrival() {
    let clock = Arc::new(AtomicU64::new(0));
    let mut owner = Recorder::new(Capture::Full, 4096, 1, clock.clone());
    let mut others = Recorder::new(Capture::Full, 4096, 2, clock);
    owner.reject(1u64, "r", &json!({"n": 1}));
    others.reject(2u64, "r", &json!({"n": 2}));
    others.reject(3u64, "r", &json!({"n": 3}));
    owner.reject(4u64, "s", &());
    owner.reject(5u64, "r", &json!({"n": 5}));
    others.accept(6u64, Some(&"six"));
    owner.accept::<()>(7u64, None);
    others.reject_count("r", 10);
    let mut merged = Recorder::merge(owner, others);
    let rej = merged.rejections();
    assert_eq!(rej["r"].count, 14);
    assert_eq!(ids(&rej["r"]), [1, 2, 3, 5]);
    for s in &rej["r"].samples {
        let n = s.details.as_ref().unwrap().to_value()["n"].clone();
        assert_eq!(n.to_string(), s.item_id.as_str());
    }
    assert_eq!(ids(&rej["s"]), [4]);
    let acc = merged.acceptances();
    assert_eq!((acc.count, ids(&acc)), (2, vec![6, 7]));
    assert_eq!(acc.samples[0].details.as_ref().unwrap().get(), "\"six\"");
}

#[test]
fn merged_reservoirs_stay_uniform_over_both() {
    // 1,000 events on one side, 3,000 on the other: a quarter of the merged samples should
    // come from the first, whichever side is merged into which.
    let mut from_first = 0;
    let trials = 200;
    for seed in 0..trials {
        let (mut a, mut b) = (
            rec(Capture::Sample, seed),
            rec(Capture::Sample, seed + 1000),
        );
        for i in 0..1000u64 {
            a.reject(i, "x", &());
        }
        for i in 1000..4000u64 {
            b.reject(i, "x", &());
        }
        let (a, b) = if seed % 2 == 0 { (a, b) } else { (b, a) };
        let rej = Recorder::merge(a, b).rejections();
        assert_eq!(rej["x"].count, 4000);
        let kept = ids(&rej["x"]);
        assert_eq!(kept.len(), SAMPLES_PER_REASON);
        from_first += kept.iter().filter(|&&i| i < 1000).count();
    }
    let share = from_first as f64 / (trials as f64 * SAMPLES_PER_REASON as f64);
    assert!((0.22..0.28).contains(&share), "{share}");
}

#[test]
fn merging_counted_only_rejections_never_fails() {
    let (mut a, mut b) = (rec(Capture::Sample, 1), rec(Capture::Sample, 2));
    a.reject_count("x", 1000);
    for i in 0..10u64 {
        a.reject(i, "x", &());
    }
    for i in 10..110u64 {
        b.reject(i, "x", &());
    }
    let rej = Recorder::merge(a, b).rejections();
    assert_eq!(rej["x"].count, 1110);
    assert!(rej["x"].samples.len() <= SAMPLES_PER_REASON);
}

#[test]
fn a_count_at_its_largest_stays_there() {
    let mut r = rec(Capture::Sample, 1);
    r.reject(1u64, "r", &());
    r.reject_count("r", u64::MAX);
    r.reject(2u64, "r", &());
    assert_eq!(r.rejections()["r"].count, u64::MAX);
}

#[test]
fn oversized_details_become_the_truncation_marker() {
    let mut r = Recorder::new(Capture::Full, 64, 1, Arc::default());
    r.reject(1u64, "r", &json!({"text": "é".repeat(100)}));
    r.reject(2u64, "r", &json!({"text": "short"}));
    let rej = r.rejections();
    let big = rej["r"].samples[0].details.as_ref().unwrap().to_value();
    assert_eq!(big["_xray_truncated"], true);
    assert_eq!(big["limit_bytes"], 64);
    assert!(big["preview"]
        .as_str()
        .unwrap()
        .starts_with("{\"text\":\"é"));
    let small = rej["r"].samples[1].details.as_ref().unwrap().to_value();
    assert_eq!(small, json!({"text": "short"}), "the next event is whole");
}
