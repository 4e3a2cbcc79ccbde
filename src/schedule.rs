//! Schedules: when a recurring action fires — at an interval or at the times a cron
//! expression names.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local};

use crate::error::Error;

/// When a recurring action fires.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// At a fixed interval, first after one interval.
    Every(Duration),
    /// At the times a five-field cron expression names (minute, hour, day of month, month,
    /// day of week with 0 = Sunday; ranges, lists, steps, three-letter names; when both day
    /// fields are restricted either may match), in local time.
    Cron(Box<CronSchedule>),
}

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    text: String,
}

impl Schedule {
    /// Parses a five-field cron expression.
    pub fn cron(expression: &str) -> Result<Schedule, Error> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(Error::Cron {
                expression: expression.to_owned(),
                reason: format!("expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"),
            });
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| Error::Cron {
                expression: expression.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Schedule::Cron(Box::new(CronSchedule {
            cron,
            text: expression.to_owned(),
        })))
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Schedule::cron(s)
    }
}

impl CronSchedule {
    /// The next time strictly after `after` that the expression names.
    pub fn next_after(&self, after: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How long from now until the next occurrence.
    pub(crate) fn delay_from_now(&self) -> Option<Duration> {
        let now = Local::now();
        let next = self.next_after(now)?;
        (next - now).to_std().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(expr: &str, from: DateTime<Local>) -> DateTime<Local> {
        match Schedule::cron(expr).unwrap() {
            Schedule::Cron(c) => c.next_after(from).unwrap(),
            Schedule::Every(_) => unreachable!(),
        }
    }

    #[test]
    fn cron_steps_ranges_and_names() {
        let t = Local.with_ymd_and_hms(2026, 11, 25, 10, 7, 30).unwrap();
        assert_eq!(
            next("*/15 * * * *", t),
            Local.with_ymd_and_hms(2026, 11, 25, 10, 15, 0).unwrap()
        );
        assert_eq!(
            next("0 9-17 * * *", t),
            Local.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap()
        );
        assert_eq!(
            next("30 8 * jan mon", t),
            Local.with_ymd_and_hms(2027, 1, 4, 8, 30, 0).unwrap()
        );
        assert_eq!(
            next("0 0 1,15 * *", t),
            Local.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn cron_day_fields_match_either_when_both_restricted() {
        // 2026-11-25 is a Wednesday. "the 1st or any Sunday (0)": the next Sunday comes first.
        let t = Local.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            next("0 0 1 * 0", t),
            Local.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next("0 0 26 * 0", t),
            Local.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_cron_expressions_are_clear_errors() {
        let err = Schedule::cron("* * *").unwrap_err();
        assert!(err.to_string().contains("expected 5 fields"), "{err}");
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::cron("* * * * * *").is_err());
        assert!("0 12 * * mon-fri".parse::<Schedule>().is_ok());
    }
}
