//! What an IoTDB sender's deletions of series and deactivations of templates mean here. IoTDB's
//! pipe carries them as path patterns (its `PipeDeleteTimeSeriesPlan` and
//! `PipeDeactivateTemplatePlan`), while a replicated [`crate::schema_sync::SchemaChange`] names the
//! series and devices it removes, so the patterns are resolved against this instance's schema, as
//! the statements would be if run here.

use crate::engine::parse_pattern;
use crate::{paths, Engine, Result};

impl Engine {
    /// The series `patterns` match here as (device, measurement), each once. Template series are
    /// left out: DELETE TIMESERIES leaves them, as on IoTDB.
    pub fn series_for_delete(&self, patterns: &[String]) -> Result<Vec<(String, String)>> {
        let parsed = patterns
            .iter()
            .map(|p| parse_pattern(p))
            .collect::<Result<Vec<_>>>()?;
        let schema = self.schema_read()?;
        let mut series = Vec::new();
        for pattern in &parsed {
            series.extend(
                schema
                    .matching_series(pattern)
                    .into_iter()
                    .filter(|s| !schema.is_template_series(&s.device, &s.measurement))
                    .map(|s| (s.device, s.measurement)),
            );
        }
        series.sort();
        series.dedup();
        Ok(series)
    }

    /// The devices `pattern` matches here that activated one of `templates` (any template when the
    /// list is empty).
    pub fn devices_using_templates(
        &self,
        pattern: &str,
        templates: &[String],
    ) -> Result<Vec<String>> {
        let pattern = parse_pattern(pattern)?;
        let schema = self.schema_read()?;
        Ok(schema
            .devices()
            .iter()
            .filter(|(device, info)| {
                info.template
                    .as_deref()
                    .is_some_and(|t| templates.is_empty() || templates.iter().any(|n| n == t))
                    && paths::matches(&pattern, &paths::split(device))
            })
            .map(|(device, _)| device.clone())
            .collect())
    }
}
