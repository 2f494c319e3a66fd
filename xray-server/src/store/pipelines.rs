//! The pipelines at a glance (`GET /pipelines`): their runs, failures, first and last run and
//! versions in a time window, read from the runs table's indexes. It must not write.

use super::rows::from_micros;
use super::views::to_u64;
use super::{Store, StoreError};
use crate::schema::runs;
use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;
use std::collections::BTreeMap;
use xray_wire::{PipelineList, PipelineSummary, RunStatus};

/// Per pipeline: name, runs, first and last start (µs).
type RunsRow = (String, i64, Option<i64>, Option<i64>);
/// Per pipeline and version: their names and the version's first start (µs).
type VersionRow = (String, Option<String>, Option<i64>);

/// The reads of the pipelines' view, for each backend.
trait PipelineSql {
    /// Runs per pipeline started in `[since, until)`, and of them those with `status`.
    fn runs_by_pipeline(
        &mut self,
        since: Option<i64>,
        until: Option<i64>,
        status: Option<&str>,
    ) -> QueryResult<Vec<RunsRow>>;
    /// Each pipeline's versions in the window with their first start (µs).
    fn versions(&mut self, since: Option<i64>, until: Option<i64>) -> QueryResult<Vec<VersionRow>>;
}

for_both_backends! {
    impl PipelineSql {
        fn runs_by_pipeline(
            &mut self,
            since: Option<i64>,
            until: Option<i64>,
            status: Option<&str>,
        ) -> QueryResult<Vec<RunsRow>> {
            let mut q = runs::table
                .group_by(runs::pipeline)
                .select((
                    runs::pipeline,
                    count_star(),
                    min(runs::started_at),
                    max(runs::started_at),
                ))
                .into_boxed();
            if let Some(t) = since {
                q = q.filter(runs::started_at.ge(t));
            }
            if let Some(t) = until {
                q = q.filter(runs::started_at.lt(t));
            }
            if let Some(s) = status {
                q = q.filter(runs::status.eq(s));
            }
            q.load(self)
        }

        fn versions(
            &mut self,
            since: Option<i64>,
            until: Option<i64>,
        ) -> QueryResult<Vec<VersionRow>> {
            let mut q = runs::table
                .filter(runs::version.is_not_null())
                .group_by((runs::pipeline, runs::version))
                .select((runs::pipeline, runs::version, min(runs::started_at)))
                .into_boxed();
            if let Some(t) = since {
                q = q.filter(runs::started_at.ge(t));
            }
            if let Some(t) = until {
                q = q.filter(runs::started_at.lt(t));
            }
            q.load(self)
        }
    }
}

impl Store {
    /// Every pipeline with runs started in `[since, until)` (µs), by name.
    pub fn pipeline_list(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<PipelineList, StoreError> {
        let failed_status = RunStatus::Failed.as_str();
        let (all, failed, versions) = with_conn!(&self.db, c => (
            c.runs_by_pipeline(since, until, None)?,
            c.runs_by_pipeline(since, until, Some(failed_status))?,
            c.versions(since, until)?,
        ));
        let failed: BTreeMap<String, i64> = failed.into_iter().map(|(p, n, ..)| (p, n)).collect();
        let mut versions_of: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for (pipeline, version, first) in versions {
            if let Some(v) = version {
                versions_of
                    .entry(pipeline)
                    .or_default()
                    .push((first.unwrap_or(0), v));
            }
        }
        let mut pipelines: Vec<PipelineSummary> = all
            .into_iter()
            .map(|(pipeline, runs, first, last)| {
                let mut versions = versions_of.remove(&pipeline).unwrap_or_default();
                versions.sort();
                PipelineSummary {
                    failed: failed.get(&pipeline).map_or(0, |&n| to_u64(n)),
                    runs: to_u64(runs),
                    first_run_at: from_micros(first.unwrap_or(0)),
                    last_run_at: from_micros(last.unwrap_or(0)),
                    versions: versions.into_iter().map(|(_, v)| v).collect(),
                    pipeline,
                }
            })
            .collect();
        pipelines.sort_by(|a, b| a.pipeline.cmp(&b.pipeline));
        Ok(PipelineList { pipelines })
    }
}
