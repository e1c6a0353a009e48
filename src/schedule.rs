//! Job schedules: `every 15m` (s, m, h) or a five-field cron expression, the next run after a
//! moment, with a failure backoff (the interval doubles per failed pass, at most an hour more)
//! and a little jitter so that jobs do not all start on the same second. A leaf module:
//! `config` checks schedules, the daemon runs them.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A fixed interval.
    Every(Duration),
    /// A cron expression (minute hour day month weekday).
    Cron(Box<croner::Cron>),
}

/// Parses `every 15m`, `every 30s`, `every 2h`, or a cron expression.
///
/// # Errors
///
/// What is wrong with the text.
pub fn parse(text: &str) -> Result<Schedule, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("every ") {
        let rest = rest.trim();
        let (num, unit) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{t}`: expected a number, as in `every 15m`"))?;
        let secs = match unit.trim() {
            "s" => n,
            "m" | "min" => n * 60,
            "h" => n * 3600,
            other => return Err(format!("`{t}`: unknown unit `{other}`; use s, m or h")),
        };
        if secs == 0 {
            return Err(format!("`{t}`: the interval must be above zero"));
        }
        return Ok(Schedule::Every(Duration::from_secs(secs)));
    }
    croner::Cron::new(t)
        .parse()
        .map(|c| Schedule::Cron(Box::new(c)))
        .map_err(|e| format!("`{t}` is neither `every N[s|m|h]` nor a cron expression: {e}"))
}

impl Schedule {
    /// The next run after `now`, with `failures` consecutive failed passes before it and a
    /// jitter of up to `jitter`.
    pub fn next(&self, now: DateTime<Utc>, failures: u32, jitter: Duration) -> DateTime<Utc> {
        let base = match self {
            Schedule::Every(d) => now + chrono::Duration::from_std(*d).unwrap_or_default(),
            Schedule::Cron(c) => c
                .find_next_occurrence(&now, false)
                .unwrap_or(now + chrono::Duration::hours(1)),
        };
        let interval = (base - now).to_std().unwrap_or_default();
        let backoff = if failures == 0 {
            Duration::ZERO
        } else {
            (interval * 2u32.saturating_pow(failures.min(6)) - interval)
                .min(Duration::from_secs(3600))
        };
        base + chrono::Duration::from_std(backoff + jitter).unwrap_or_default()
    }
}

impl Schedule {
    /// How long from now until the next run.
    pub fn delay(&self, failures: u32, jitter: Duration) -> Duration {
        let now = Utc::now();
        (self.next(now, failures, jitter) - now)
            .to_std()
            .unwrap_or_default()
    }

    /// The base interval (for the jitter): the interval, or a minute for cron expressions.
    pub fn interval(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(_) => Duration::from_secs(60),
        }
    }
}

/// Runs `pass` at once, then on the schedule, until `stop` turns true. A pass never overlaps
/// the next: the wait starts when a pass ends. `pass` says whether it went well; failures back
/// off (see [`Schedule::next`]).
pub async fn drive<F, Fut>(
    schedule: &Schedule,
    stop: tokio::sync::watch::Receiver<bool>,
    jittered: bool,
    pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    drive_woken(schedule, stop, jittered, &tokio::sync::Notify::new(), pass).await;
}

/// [`drive`], with `wake` starting the next pass at once (a pass running finishes first; a
/// wake during a pass starts the next one as soon as it ends).
pub async fn drive_woken<F, Fut>(
    schedule: &Schedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
    jittered: bool,
    wake: &tokio::sync::Notify,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut failures = 0u32;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        failures = if pass().await { 0 } else { failures + 1 };
        let j = if jittered {
            jitter(schedule.interval())
        } else {
            Duration::ZERO
        };
        wait = schedule.delay(failures, j);
    }
}

/// A jitter of up to a tenth of a second per second of interval, at most 30 s, from the clock.
pub fn jitter(interval: Duration) -> Duration {
    let max = (interval / 10).min(Duration::from_secs(30));
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::from(Utc::now().timestamp_subsec_nanos());
    Duration::from_millis(nanos % (max.as_millis().max(1) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test(start_paused = true)]
    async fn passes_never_overlap_and_failures_back_off() {
        use std::sync::{Arc, Mutex};
        let schedule = parse("every 15m").unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let t0 = tokio::time::Instant::now();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&starts);
        let driver = tokio::spawn(async move {
            drive(&schedule, rx, false, move || {
                let seen = Arc::clone(&seen);
                async move {
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(t0.elapsed().as_secs() / 60);
                        s.len()
                    };
                    // Each pass takes 20 minutes, longer than the interval; the third fails.
                    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
                    n != 3
                }
            })
            .await;
        });
        tokio::time::sleep(Duration::from_secs(4 * 3600)).await;
        tx.send(true).unwrap();
        driver.await.unwrap();
        let s = starts.lock().unwrap().clone();
        // At once; 20 + 15; 35 + 35; the failure doubles the wait: 70 + 20 + 30; then 15 again.
        assert_eq!(&s[..5], &[0, 35, 70, 120, 155], "{s:?}");
    }

    #[test]
    fn every_and_cron_schedules() {
        let now = at("2026-11-24T10:07:00Z");
        let e = parse("every 15m").unwrap();
        assert_eq!(e.next(now, 0, Duration::ZERO), at("2026-11-24T10:22:00Z"));
        // Failures back off: 15 min, then 30, 60, ... at most an hour more.
        assert_eq!(e.next(now, 1, Duration::ZERO), at("2026-11-24T10:37:00Z"));
        assert_eq!(e.next(now, 6, Duration::ZERO), at("2026-11-24T11:22:00Z"));
        let c = parse("*/15 * * * *").unwrap();
        assert_eq!(c.next(now, 0, Duration::ZERO), at("2026-11-24T10:15:00Z"));
        assert!(parse("every 0m").is_err());
        assert!(parse("every 5 weeks").unwrap_err().contains("unit"));
        assert!(parse("sometimes").is_err());
        assert!(jitter(Duration::from_secs(900)) <= Duration::from_secs(30));
    }
}
