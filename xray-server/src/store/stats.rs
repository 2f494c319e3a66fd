//! `GET /pipelines/{p}/stats` and `/compare`, read from the rollups (`rollups.rs`): the rows of
//! the hours asked for are read (an hour counts when any of it is in `[since, until)`), then
//! summed per bucket or per side in memory; percentiles come from the merged duration
//! histograms. It must not write.

use super::histogram;
use super::rollup_sql::{RunRollupRow, StepRollupRow};
use super::rollups::{hour_of, StepAgg};
use super::rows::from_micros;
use super::views::to_u64;
use super::{Store, StoreError};
use crate::schema::{run_rollups, step_rollups};
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap};
use xray_wire::{
    BucketWidth, PipelineCompare, PipelineStats, ReasonChange, RunBucket, StepBucket, StepChange,
    StepFigures, StepSeries, StepType, VersionSpan,
};

/// One day in µs.
const DAY_US: i64 = 86_400_000_000;

/// Which runs: those started in the hours overlapping `[since, until)` (µs), of `version` if
/// given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// From this time (µs), the whole hour it falls in included.
    pub since: Option<i64>,
    /// Before this time (µs).
    pub until: Option<i64>,
    /// Only this version's runs.
    pub version: Option<String>,
}

/// The rows of the rollups one selection reads.
type Rows = (Vec<RunRollupRow>, Vec<StepRollupRow>);

/// The reads, for each backend.
trait StatsSql {
    /// The rollup rows of `pipeline` in `sel`, oldest hour first.
    fn rollup_rows(&mut self, pipeline: &str, sel: &Selection) -> QueryResult<Rows>;
}

/// Narrows a boxed query on `$t` (a rollup table) to a pipeline and selection.
macro_rules! selected {
    ($t:ident, $pipeline:expr, $sel:expr) => {{
        let mut q = $t::table
            .filter($t::pipeline.eq($pipeline))
            .order($t::hour)
            .into_boxed();
        if let Some(t) = $sel.since {
            q = q.filter($t::hour.ge(hour_of(t)));
        }
        if let Some(t) = $sel.until {
            q = q.filter($t::hour.lt(t));
        }
        if let Some(v) = &$sel.version {
            q = q.filter($t::version.eq(v.clone()));
        }
        q
    }};
}

for_both_backends! {
    impl StatsSql {
        fn rollup_rows(&mut self, pipeline: &str, sel: &Selection) -> QueryResult<Rows> {
            let runs = selected!(run_rollups, pipeline, sel)
                .select(RunRollupRow::as_select())
                .load(self)?;
            let steps = selected!(step_rollups, pipeline, sel)
                .select(StepRollupRow::as_select())
                .load(self)?;
            Ok((runs, steps))
        }
    }
}

/// A step name's figures summed over some rows (its reasons among them), with the rows' stored
/// duration histograms (read only for the percentiles, [`histogram::quantiles`]).
#[derive(Debug, Default)]
struct Summed {
    agg: StepAgg,
    durations: Vec<Vec<u8>>,
}

impl Summed {
    fn rejection_rate(&self) -> Option<f64> {
        (self.agg.counts.input_count > 0)
            .then(|| self.agg.counts.rejected_in as f64 / self.agg.counts.input_count as f64)
    }

    fn score_mean(&self) -> Option<f64> {
        (self.agg.counts.score_count > 0)
            .then(|| self.agg.counts.score_sum / self.agg.counts.score_count as f64)
    }

    fn share(&self, reason: &str) -> Option<f64> {
        let n = self.agg.reasons.get(reason);
        (self.agg.counts.input_count > 0).then(|| n as f64 / self.agg.counts.input_count as f64)
    }

    /// The median and 95th percentile duration.
    fn percentiles(&self) -> Result<(Option<f64>, Option<f64>), StoreError> {
        let q = histogram::quantiles(&self.durations, &[0.5, 0.95])?;
        Ok((q[0], q[1]))
    }

    fn figures(&self) -> Result<StepFigures, StoreError> {
        Ok(StepFigures {
            runs: to_u64(self.agg.counts.runs),
            input_count: to_u64(self.agg.counts.input_count),
            output_count: to_u64(self.agg.counts.output_count),
            rejection_rate: self.rejection_rate(),
            score_mean: self.score_mean(),
            duration_ms_p50: self.percentiles()?.0,
        })
    }
}

/// A step type as stored (written by the server from the enum; unknown text reads as
/// `transform`, which cannot happen).
fn step_type(s: Option<&String>) -> StepType {
    s.and_then(|t| t.parse().ok())
        .unwrap_or(StepType::Transform)
}

/// Per (step name, bucket start): the summed figures.
type ByBucket = BTreeMap<(String, i64), Summed>;

/// Per step name, per key `bucket(hour)`: the summed figures; and each name's mean position.
fn sum_steps(
    steps: Vec<StepRollupRow>,
    bucket: impl Fn(i64) -> i64,
) -> Result<(ByBucket, HashMap<String, f64>), StoreError> {
    let mut out = ByBucket::new();
    let mut position: HashMap<String, (i64, i64)> = HashMap::new();
    for r in steps {
        let agg = r.counts()?;
        let p = position.entry(r.step.clone()).or_default();
        p.0 += agg.counts.position_sum;
        p.1 += agg.counts.steps;
        let s = out.entry((r.step, bucket(r.hour))).or_default();
        s.agg.merge(&agg, 1);
        s.durations.push(r.durations);
    }
    let mean = position
        .into_iter()
        .map(|(name, (sum, n))| (name, sum as f64 / n.max(1) as f64))
        .collect();
    Ok((out, mean))
}

/// Step names in the order they run (mean position), then by name.
fn in_run_order<'a>(
    names: impl Iterator<Item = &'a String>,
    mean: &HashMap<String, f64>,
) -> Vec<String> {
    let mut names: Vec<String> = names.cloned().collect();
    names.dedup();
    names.sort_by(|a, b| {
        let (pa, pb) = (mean.get(a).unwrap_or(&0.0), mean.get(b).unwrap_or(&0.0));
        pa.total_cmp(pb).then_with(|| a.cmp(b))
    });
    names.dedup();
    names
}

impl Store {
    /// `GET /pipelines/{pipeline}/stats`: the pipeline's runs and each step name's figures per
    /// bucket of `width`, over `sel`. An unknown pipeline has no buckets.
    pub fn pipeline_stats(
        &self,
        pipeline: &str,
        sel: &Selection,
        width: BucketWidth,
    ) -> Result<PipelineStats, StoreError> {
        let (runs, steps) = with_conn!(&self.db, c => c.rollup_rows(pipeline, sel)?);
        let bucket = |hour: i64| match width {
            BucketWidth::Hour => hour,
            BucketWidth::Day => hour.div_euclid(DAY_US) * DAY_US,
        };
        let mut run_buckets: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        let mut versions: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
        for r in &runs {
            let b = run_buckets.entry(bucket(r.hour)).or_default();
            b.0 += r.runs;
            b.1 += r.failed;
            if !r.version.is_empty() {
                let v = versions
                    .entry(r.version.as_str())
                    .or_insert((i64::MAX, i64::MIN, 0));
                v.0 = v.0.min(r.first_run_at);
                v.1 = v.1.max(r.last_run_at);
                v.2 += r.runs;
            }
        }
        let (summed, mean) = sum_steps(steps, bucket)?;
        let mut series: BTreeMap<&str, Vec<StepBucket>> = BTreeMap::new();
        let mut types: HashMap<&str, Option<&String>> = HashMap::new();
        for ((name, start), s) in &summed {
            types.insert(name, s.agg.step_type.as_ref());
            let (p50, p95) = s.percentiles()?;
            series.entry(name).or_default().push(StepBucket {
                start: from_micros(*start),
                runs: to_u64(s.agg.counts.runs),
                failed: to_u64(s.agg.counts.failed),
                input_count: to_u64(s.agg.counts.input_count),
                output_count: to_u64(s.agg.counts.output_count),
                rejection_rate: s.rejection_rate(),
                rejections: s
                    .agg
                    .reasons
                    .iter()
                    .map(|(r, n)| (r.clone(), to_u64(n)))
                    .collect(),
                duration_ms_p50: p50,
                duration_ms_p95: p95,
                score_mean: s.score_mean(),
            });
        }
        let names: Vec<String> = series.keys().map(|s| s.to_string()).collect();
        let steps = in_run_order(names.iter(), &mean)
            .into_iter()
            .map(|name| StepSeries {
                step_type: step_type(types.get(name.as_str()).copied().flatten()),
                buckets: series.remove(name.as_str()).unwrap_or_default(),
                step: name,
            })
            .collect();
        let mut versions: Vec<VersionSpan> = versions
            .into_iter()
            .map(|(v, (first, last, runs))| VersionSpan {
                version: v.to_string(),
                first_run_at: from_micros(first),
                last_run_at: from_micros(last),
                runs: to_u64(runs),
            })
            .collect();
        versions.sort_by(|a, b| (a.first_run_at, &a.version).cmp(&(b.first_run_at, &b.version)));
        Ok(PipelineStats {
            pipeline: pipeline.to_string(),
            bucket: width,
            version: sel.version.clone(),
            runs: run_buckets
                .into_iter()
                .map(|(start, (runs, failed))| RunBucket {
                    start: from_micros(start),
                    runs: to_u64(runs),
                    failed: to_u64(failed),
                })
                .collect(),
            steps,
            versions,
        })
    }

    /// `GET /pipelines/{pipeline}/compare`: the runs of selection A and of B side by side
    /// (`a_text`, `b_text` as given), the step and reasons that moved most first.
    pub fn pipeline_compare(
        &self,
        pipeline: &str,
        (a_text, a): (&str, &Selection),
        (b_text, b): (&str, &Selection),
    ) -> Result<PipelineCompare, StoreError> {
        let (ra, sa) = with_conn!(&self.db, c => c.rollup_rows(pipeline, a)?);
        let (rb, sb) = with_conn!(&self.db, c => c.rollup_rows(pipeline, b)?);
        let (side_a, mean) = sum_steps(sa, |_| 0)?;
        let (side_b, mean_b) = sum_steps(sb, |_| 0)?;
        let side_a: HashMap<String, Summed> =
            side_a.into_iter().map(|((n, _), s)| (n, s)).collect();
        let side_b: HashMap<String, Summed> =
            side_b.into_iter().map(|((n, _), s)| (n, s)).collect();
        let mut mean = mean;
        for (n, m) in mean_b {
            mean.entry(n).or_insert(m);
        }
        let none = Summed::default();
        let names = in_run_order(side_a.keys().chain(side_b.keys()), &mean);
        let mut steps: Vec<(StepChange, f64)> = names
            .into_iter()
            .enumerate()
            .map(|(order, name)| {
                let (x, y) = (
                    side_a.get(&name).unwrap_or(&none),
                    side_b.get(&name).unwrap_or(&none),
                );
                Ok((change(name, x, y)?, order as f64))
            })
            .collect::<Result<_, StoreError>>()?;
        steps.sort_by(|(x, ox), (y, oy)| y.moved.total_cmp(&x.moved).then(ox.total_cmp(oy)));
        let steps: Vec<StepChange> = steps.into_iter().map(|(s, _)| s).collect();
        Ok(PipelineCompare {
            pipeline: pipeline.to_string(),
            a: a_text.to_string(),
            b: b_text.to_string(),
            a_runs: to_u64(ra.iter().map(|r| r.runs).sum()),
            b_runs: to_u64(rb.iter().map(|r| r.runs).sum()),
            headline: steps.first().and_then(headline),
            steps,
        })
    }
}

/// One step name in A (`x`) and B (`y`).
fn change(name: String, x: &Summed, y: &Summed) -> Result<StepChange, StoreError> {
    let mut reasons: Vec<ReasonChange> = x
        .agg
        .reasons
        .iter()
        .chain(y.agg.reasons.iter())
        .map(|(r, _)| r)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|reason| {
            let (a_share, b_share) = (x.share(reason), y.share(reason));
            ReasonChange {
                reason: reason.clone(),
                a_count: to_u64(x.agg.reasons.get(reason)),
                b_count: to_u64(y.agg.reasons.get(reason)),
                change: a_share.zip(b_share).map_or(0.0, |(a, b)| b - a),
                a_share,
                b_share,
            }
        })
        .collect();
    reasons.sort_by(|p, q| {
        q.change
            .abs()
            .total_cmp(&p.change.abs())
            .then((q.a_count + q.b_count).cmp(&(p.a_count + p.b_count)))
            .then(p.reason.cmp(&q.reason))
    });
    let rate = x
        .rejection_rate()
        .zip(y.rejection_rate())
        .map_or(0.0, |(a, b)| b - a);
    let moved = reasons
        .iter()
        .map(|r| r.change.abs())
        .fold(rate.abs(), f64::max);
    Ok(StepChange {
        step_type: step_type(y.agg.step_type.as_ref().or(x.agg.step_type.as_ref())),
        a: x.figures()?,
        b: y.figures()?,
        moved,
        reasons,
        step: name,
    })
}

/// `filter_candidates: price_too_high 10% → 58% of input` (the reason that moved most, which
/// says more than the rejection rate it is part of), or the rejection rate's move when no
/// reason's share moved; none when nothing moved.
fn headline(s: &StepChange) -> Option<String> {
    if s.moved <= 0.0 {
        return None;
    }
    let pct = |x: f64| {
        let t = format!("{:.1}", x * 100.0);
        format!("{}%", t.strip_suffix(".0").unwrap_or(&t))
    };
    match s.reasons.first() {
        Some(r) if r.change != 0.0 => Some(format!(
            "{}: {} {} → {} of input",
            s.step,
            r.reason,
            pct(r.a_share.unwrap_or(0.0)),
            pct(r.b_share.unwrap_or(0.0))
        )),
        _ => Some(format!(
            "{}: rejection rate {} → {}",
            s.step,
            pct(s.a.rejection_rate.unwrap_or(0.0)),
            pct(s.b.rejection_rate.unwrap_or(0.0))
        )),
    }
}
