//! Retries, in one place: exponential backoff with jitter (the `backoff` crate), `Retry-After`
//! honoured, bounded in time and in attempts. Every HTTP call facto makes goes through [`send`] or
//! [`send_once`], which classify each outcome as success, retry (with an optional delay) or
//! permanent failure; [`bounded`] runs the loop, so no `Retry-After` can stretch it.

use std::time::Duration;

use backoff::ExponentialBackoffBuilder;
use reqwest::{RequestBuilder, Response, StatusCode};

/// How hard to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Longest delay between two attempts.
    pub max_interval: Duration,
    /// Give up after this long in all.
    pub max_elapsed: Duration,
    /// Longest `Retry-After` honoured: a server asking for more (or for more than the budget
    /// has left) is not waited on; the call fails at once with [`HttpFailure::WaitTooLong`].
    pub max_retry_after: Duration,
    /// Most requests sent in all for one call (the first one included).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(120),
            max_attempts: 10,
        }
    }
}

/// Why a request finally failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpFailure {
    /// No answer (connection refused, DNS, timeout) even after retries.
    #[error("{url}: no answer after retries: {detail}")]
    Unreachable {
        /// URL (without credentials).
        url: String,
        /// Last transport error.
        detail: String,
    },
    /// The server kept answering 429 or 5xx until the retry budget ran out.
    #[error("{url}: HTTP {status} after retries")]
    Exhausted {
        /// URL.
        url: String,
        /// Last status.
        status: u16,
    },
    /// The server asked to be called again later than the retry budget allows (`Retry-After`).
    #[error("{url}: HTTP {status}, the server asks to wait {wait_secs} s (Retry-After), longer than the retry budget of {budget_secs} s left; the next run tries again")]
    WaitTooLong {
        /// URL.
        url: String,
        /// Last status.
        status: u16,
        /// The wait asked for, in seconds.
        wait_secs: u64,
        /// What was left of the budget, in seconds.
        budget_secs: u64,
    },
    /// The server refused the request (4xx other than 429): retrying would not help.
    #[error("{url}: HTTP {status}: {body}")]
    Refused {
        /// URL.
        url: String,
        /// Status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Requests sent again after a transient failure, since the process started (for `/metrics`).
pub static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Waits imposed by rate limits (429, limiter, exhausted windows), since the process started.
pub static RATE_LIMIT_WAITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn transient_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error()
}

/// A 429 that waiting minutes will not cure: Xero's daily limit (`X-Rate-Limit-Problem: day`).
fn daily_limit(resp: &Response) -> bool {
    resp.status() == StatusCode::TOO_MANY_REQUESTS
        && resp
            .headers()
            .get("x-rate-limit-problem")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("day"))
}

/// The refusal for a daily limit: permanent for this run, with when it resets if known.
fn daily_refusal(url: &str, resp: &Response) -> HttpFailure {
    let wait =
        retry_after(resp).map_or_else(String::new, |d| format!("; it resets in {} s", d.as_secs()));
    HttpFailure::Refused {
        url: url.to_owned(),
        status: 429,
        body: format!("daily call limit reached{wait}"),
    }
}

/// Exponential backoff with jitter, bounded in time, as a policy asks.
fn backoff_of(policy: RetryPolicy) -> backoff::ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(policy.initial)
        .with_max_interval(policy.max_interval)
        .with_max_elapsed_time(Some(policy.max_elapsed))
        .with_randomization_factor(0.5)
        .build()
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// Sends an idempotent request (GET), retrying transport errors, 408, 429 and 5xx.
/// `make` builds a fresh request for each attempt.
///
/// # Errors
///
/// [`HttpFailure`] once retrying is pointless or the budget is spent.
pub async fn send<F>(policy: RetryPolicy, url: &str, make: F) -> Result<Response, HttpFailure>
where
    F: Fn() -> RequestBuilder,
{
    send_as(Repeat::Idempotent, policy, url, make)
        .await
        .map_err(|e| match e {
            OnceFailure::NotSent(e) | OnceFailure::Refused(e) => e,
            // Not given for an idempotent call (every transport error is retried).
            OnceFailure::Unknown { url, detail } => HttpFailure::Unreachable { url, detail },
        })
}

/// What a 429 or 503 asking to wait `wait`, beyond the `left` of the budget, becomes: the call
/// stops at once with the wait named.
fn wait_too_long(e: HttpFailure, wait: Duration, left: Duration) -> HttpFailure {
    match e {
        HttpFailure::Exhausted { url, status } => HttpFailure::WaitTooLong {
            url,
            status,
            wait_secs: wait.as_secs(),
            budget_secs: left.as_secs(),
        },
        other => other,
    }
}

/// Runs `op` until it succeeds, fails for good, or the policy's budget (time and attempts) is
/// spent. Unlike `backoff::future::retry`, a `Retry-After` never bypasses the budget: a wait
/// longer than what is left ends the loop at once with the error `too_long` makes of it (given
/// the wait asked for and the budget left).
///
/// # Errors
///
/// The last error, once retrying is pointless or the budget is spent.
pub async fn bounded<T, E, F, Fut, L>(policy: RetryPolicy, mut op: F, too_long: L) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, backoff::Error<E>>>,
    L: Fn(E, Duration, Duration) -> E,
{
    use backoff::backoff::Backoff;
    let start = tokio::time::Instant::now();
    let mut backoff = backoff_of(policy);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (err, asked) = match op().await {
            Ok(v) => return Ok(v),
            Err(backoff::Error::Permanent(e)) => return Err(e),
            Err(backoff::Error::Transient { err, retry_after }) => (err, retry_after),
        };
        if attempts >= policy.max_attempts.max(1) {
            return Err(err);
        }
        let left = policy.max_elapsed.saturating_sub(start.elapsed());
        let delay = match asked {
            Some(wait) if wait > left || wait > policy.max_retry_after => {
                return Err(too_long(err, wait, left.min(policy.max_retry_after)))
            }
            Some(wait) => wait,
            None => match backoff.next_backoff() {
                Some(d) if d <= left => d,
                _ => return Err(err),
            },
        };
        tokio::time::sleep(delay).await;
    }
}

/// How a request that must not be repeated blindly (a deposit) finally went.
#[derive(Debug, thiserror::Error)]
pub enum OnceFailure {
    /// Certainly not processed (no connection, 429, 503 until the budget ran out): safe to send
    /// again later.
    #[error(transparent)]
    NotSent(HttpFailure),
    /// Maybe processed (timeout, 500, 502, 504, connection lost mid-way): look it up before any
    /// new attempt.
    #[error("{url}: outcome unknown: {detail}")]
    Unknown {
        /// URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// Refused (4xx): not processed.
    #[error(transparent)]
    Refused(HttpFailure),
}

/// Sends a non-idempotent request (a POST that creates something). It is retried only when the
/// server certainly did not process it: no connection made, 429, 503. Any other failure is
/// reported as [`OnceFailure::Unknown`], never retried here.
///
/// # Errors
///
/// [`OnceFailure`].
pub async fn send_once<F>(policy: RetryPolicy, url: &str, make: F) -> Result<Response, OnceFailure>
where
    F: Fn() -> RequestBuilder,
{
    send_as(Repeat::Once, policy, url, make).await
}

/// Whether a request may be sent again when it may have been processed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Yes (a read): every transport error, 408, 429 and 5xx is retried.
    Idempotent,
    /// No (a creation): retried only when certainly not processed (no connection, 429, 503).
    Once,
}

/// The one retry loop of every HTTP call: each outcome classified as success, retry (with the
/// server's `Retry-After`) or failure, as `repeat` allows; bounded by `policy`.
async fn send_as<F>(
    repeat: Repeat,
    policy: RetryPolicy,
    url: &str,
    make: F,
) -> Result<Response, OnceFailure>
where
    F: Fn() -> RequestBuilder,
{
    let once = repeat == Repeat::Once;
    let shown = strip_query(url);
    let op = || async {
        let resp = match make().send().await {
            Ok(resp) => resp,
            Err(e) if !once || e.is_connect() => {
                // Never the URL in a log: a path or query may be a secret (a webhook's).
                let e = e.without_url();
                if once {
                    tracing::warn!(url = %shown, error = %e, "No connection; retrying.");
                } else {
                    tracing::warn!(url = %shown, error = %e, "Request failed; retrying.");
                    count(&RETRIES);
                }
                return Err(backoff::Error::transient(OnceFailure::NotSent(
                    HttpFailure::Unreachable {
                        url: shown.clone(),
                        detail: e.to_string(),
                    },
                )));
            }
            Err(e) => {
                return Err(backoff::Error::Permanent(OnceFailure::Unknown {
                    url: shown.clone(),
                    detail: e.without_url().to_string(),
                }))
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if daily_limit(&resp) {
            return Err(backoff::Error::Permanent(OnceFailure::Refused(
                daily_refusal(&shown, &resp),
            )));
        }
        let retried = if once {
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
        } else {
            transient_status(status)
        };
        if retried {
            let wait = retry_after(&resp);
            let status = status.as_u16();
            if once {
                tracing::warn!(url = %shown, status, retry_after = ?wait, "Not processed; retrying later.");
            } else {
                tracing::warn!(url = %shown, status, retry_after = ?wait, "Server asked to retry later.");
            }
            count(&RETRIES);
            if once || status == 429 {
                count(&RATE_LIMIT_WAITS);
            }
            return Err(backoff::Error::Transient {
                err: OnceFailure::NotSent(HttpFailure::Exhausted {
                    url: shown.clone(),
                    status,
                }),
                retry_after: wait,
            });
        }
        if once && !status.is_client_error() {
            // 500, 502, 504: it may have been processed.
            return Err(backoff::Error::Permanent(OnceFailure::Unknown {
                url: shown.clone(),
                detail: format!("HTTP {}", status.as_u16()),
            }));
        }
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Err(backoff::Error::Permanent(OnceFailure::Refused(
            HttpFailure::Refused {
                url: shown.clone(),
                status: status.as_u16(),
                body,
            },
        )))
    };
    bounded(policy, op, |e, wait, left| match e {
        OnceFailure::NotSent(e) => OnceFailure::NotSent(wait_too_long(e, wait, left)),
        other => other,
    })
    .await
}

/// A sliding-window limit on requests (Pennylane: 25 per 5 s per token), shared by the calls of
/// one client so that a run never provokes a storm of 429s. Measured with [`tokio::time::Instant`]:
/// exact to the millisecond, where servers give their reset in whole seconds.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    state: std::sync::Mutex<Window>,
}

/// The calls of the current window, and how long the server asked to wait.
#[derive(Debug, Default)]
struct Window {
    sent: std::collections::VecDeque<tokio::time::Instant>,
    /// No call before then: the server said its window had no call left.
    closed_until: Option<tokio::time::Instant>,
}

impl RateLimiter {
    /// At most `max` requests per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            max: max.max(1) as usize,
            window,
            state: std::sync::Mutex::new(Window::default()),
        }
    }

    /// The window, its calls older than `window` dropped. (Never held across an await: a
    /// panic elsewhere cannot poison plain timestamps, hence `into_inner`.)
    fn current(&self, now: tokio::time::Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while w
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            w.sent.pop_front();
        }
        w
    }

    /// Waits until one more request fits in the window, and counts it.
    pub async fn acquire(&self) {
        loop {
            let now = tokio::time::Instant::now();
            let wake = {
                let mut w = self.current(now);
                let closed = w.closed_until.filter(|t| *t > now);
                let full = w.sent.len() >= self.max;
                if !full && closed.is_none() {
                    w.sent.push_back(now);
                    return;
                }
                let slot = match w.sent.front() {
                    Some(oldest) if full => *oldest + self.window,
                    _ => now,
                };
                slot.max(closed.unwrap_or(now))
            };
            count(&RATE_LIMIT_WAITS);
            tokio::time::sleep_until(wake).await;
        }
    }

    /// The server says its window has no call left, the next one being allowed in `wait` (its
    /// reset). When this limiter's window is full too, both count the same calls and the
    /// limiter's own clock decides: waiting on the server's reset, rounded to the second, added
    /// up to a second to every window (25 calls took 6 s instead of 5). Otherwise others use
    /// the same quota, and no call goes before `wait` is over.
    pub fn exhausted(&self, wait: Duration) {
        let now = tokio::time::Instant::now();
        let mut w = self.current(now);
        if w.sent.len() >= self.max {
            return;
        }
        let until = now + wait;
        w.closed_until = Some(w.closed_until.map_or(until, |t| t.max(until)));
    }
}

/// When a response says the window has no call left (`X-MinLimit-Remaining: 0`,
/// `ratelimit-remaining: 0`), how long to wait before the next call: until the reset the server
/// gives (a unix time in `reset_header`), else `window`, at most `window`.
pub fn exhausted_wait(
    resp: &Response,
    remaining_header: &str,
    reset_header: Option<&str>,
    window: Duration,
) -> Option<Duration> {
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
    exhausted_wait_at(
        header(remaining_header),
        reset_header.and_then(header),
        chrono::Utc::now().timestamp_millis(),
        window,
    )
}

/// [`exhausted_wait`] from the headers' values, at `now_ms` (unix milliseconds). The reset, in
/// whole seconds, is waited on to the millisecond, not from the start of the current second.
pub fn exhausted_wait_at(
    remaining: Option<&str>,
    reset: Option<&str>,
    now_ms: i64,
    window: Duration,
) -> Option<Duration> {
    if remaining?.trim().parse::<u64>().ok()? > 0 {
        return None;
    }
    let until_reset = reset
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|ts| ts.saturating_mul(1000).saturating_sub(now_ms).max(0))
        .map(|ms| Duration::from_millis(ms.unsigned_abs()));
    Some(until_reset.unwrap_or(window).min(window))
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_window_is_never_exceeded() {
        let l = RateLimiter::new(3, Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        for _ in 0..7 {
            l.acquire().await;
        }
        // 3 at once, 3 after 5 s, the 7th after 10 s.
        assert!(start.elapsed() >= Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(11));
    }

    use tokio::time::Instant;

    /// A fake Pennylane quota: `max` calls per fixed window of 5 s opened by the first call after
    /// the last window closed; its `ratelimit-reset` is the window's end in whole unix seconds,
    /// rounded up. The wall clock starts at 0.3 s past a second, so the rounding matters.
    struct Quota {
        max: usize,
        opened: Instant,
        used: usize,
        refused: usize,
        t0: Instant,
    }

    const WINDOW: Duration = Duration::from_secs(5);
    const UNIX_T0_MS: i64 = 1_770_379_505_300;

    impl Quota {
        /// `used` calls already made by someone else, in a window opened `ago`.
        fn new(max: usize, used: usize, ago: Duration) -> Quota {
            let t0 = Instant::now();
            Quota {
                max,
                opened: t0.checked_sub(ago).unwrap(),
                used,
                refused: 0,
                t0,
            }
        }

        fn unix_ms(&self, t: Instant) -> i64 {
            let since = t.duration_since(self.t0).as_millis() as i64;
            let before = self.t0.duration_since(t).as_millis() as i64;
            UNIX_T0_MS + since - before
        }

        /// One call arriving now: its `ratelimit-remaining` and `ratelimit-reset`.
        fn call(&mut self) -> (String, String) {
            let now = Instant::now();
            if now >= self.opened + WINDOW {
                self.opened = now;
                self.used = 0;
            }
            self.used += 1;
            if self.used > self.max {
                self.refused += 1;
            }
            let reset = (self.unix_ms(self.opened + WINDOW) + 999) / 1000;
            (
                self.max.saturating_sub(self.used).to_string(),
                reset.to_string(),
            )
        }
    }

    /// `n` calls as the Pennylane client makes them: the limiter, the call (20 ms), the
    /// headers noted. When each call was sent, from the start.
    async fn paced_calls(l: &RateLimiter, q: &mut Quota, n: usize) -> Vec<Duration> {
        let mut sent = Vec::new();
        for _ in 0..n {
            l.acquire().await;
            sent.push(q.t0.elapsed());
            let (remaining, reset) = q.call();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now_ms = q.unix_ms(Instant::now());
            if let Some(wait) = exhausted_wait_at(Some(&remaining), Some(&reset), now_ms, WINDOW) {
                l.exhausted(wait);
            }
        }
        sent
    }

    #[tokio::test(start_paused = true)]
    async fn pennylane_pacing_takes_the_documented_window_and_never_more_calls() {
        let l = RateLimiter::new(25, WINDOW);
        let mut q = Quota::new(25, 0, Duration::ZERO);
        let sent = paced_calls(&l, &mut q, 100).await;
        assert_eq!(q.refused, 0, "a call above the limit");
        // 25 calls per window: the 26th, 51st and 76th open the next ones, 5 s apart (the
        // reset rounded to the second made it 6 s).
        for (k, i) in [(1u32, 25), (2, 50), (3, 75)] {
            let want = WINDOW * k;
            let got = sent[i];
            assert!(
                got >= want && got <= want + WINDOW / 20,
                "call {} sent at {got:?}, not within 5 % of {want:?}",
                i + 1
            );
        }
        // No 5 s holds more than 25 of them.
        for w in sent.windows(26) {
            assert!(w[25] - w[0] >= WINDOW, "{w:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quota_used_by_others_is_waited_for_until_its_reset() {
        // 20 calls made 1 s ago by another client of the token: 5 left, reset at 4.3 s → 5.
        let l = RateLimiter::new(25, WINDOW);
        let mut q = Quota::new(25, 20, Duration::from_secs(1));
        let sent = paced_calls(&l, &mut q, 10).await;
        assert_eq!(q.refused, 0, "a call above the limit");
        assert!(sent[4] < Duration::from_millis(200), "{sent:?}");
        // The 6th waits for the reset (whole second 5 of the wall clock, 4.7 s from the start),
        // to the millisecond.
        assert_eq!(sent[5], Duration::from_millis(4_700), "{sent:?}");
    }

    #[test]
    fn the_reset_is_waited_on_to_the_millisecond() {
        let w = |rem: &str, reset: Option<&str>, now_ms| {
            exhausted_wait_at(Some(rem), reset, now_ms, WINDOW)
        };
        assert_eq!(w("3", Some("1000"), 999_000), None);
        assert_eq!(
            w("0", Some("1000"), 996_250),
            Some(Duration::from_millis(3_750))
        );
        assert_eq!(w("0", Some("1000"), 1_000_500), Some(Duration::ZERO));
        assert_eq!(w("0", Some("2000"), 1_000_000), Some(WINDOW));
        assert_eq!(w("0", None, 0), Some(WINDOW));
        assert_eq!(exhausted_wait_at(None, Some("1"), 0, WINDOW), None);
    }

    fn busy(retry_after: Option<Duration>) -> backoff::Error<HttpFailure> {
        backoff::Error::Transient {
            err: HttpFailure::Exhausted {
                url: "u".into(),
                status: 429,
            },
            retry_after,
        }
    }

    fn too_long(e: HttpFailure, wait: Duration, left: Duration) -> HttpFailure {
        HttpFailure::WaitTooLong {
            url: e.to_string(),
            status: 429,
            wait_secs: wait.as_secs(),
            budget_secs: left.as_secs(),
        }
    }

    fn policy(budget: u64) -> RetryPolicy {
        RetryPolicy {
            max_elapsed: Duration::from_secs(budget),
            max_retry_after: Duration::from_secs(budget),
            ..RetryPolicy::default()
        }
    }

    /// A server that always answers 429 asking to wait `wait`, within a budget of `budget`
    /// seconds: the outcome, and how many requests were sent.
    async fn always_busy(budget: u64, wait: Duration) -> (Result<(), HttpFailure>, u32) {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r = bounded(
            policy(budget),
            || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(busy(Some(wait)))
            },
            too_long,
        )
        .await;
        (r, calls.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_never_stretches_the_budget() {
        let start = tokio::time::Instant::now();
        let (r, calls) = always_busy(6, Duration::from_secs(1)).await;
        assert!(r.is_err());
        assert!(start.elapsed() <= Duration::from_secs(6));
        assert!(calls <= 7);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_capped_even_without_a_wait() {
        let (r, calls) = always_busy(600, Duration::ZERO).await;
        assert!(matches!(r, Err(HttpFailure::Exhausted { .. })));
        assert_eq!(calls, RetryPolicy::default().max_attempts);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_beyond_the_budget_fails_at_once() {
        let (r, calls) = always_busy(6, Duration::from_secs(3600)).await;
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                HttpFailure::WaitTooLong {
                    wait_secs: 3600,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(calls, 1);
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(10),
            max_interval: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(5),
            ..RetryPolicy::default()
        }
    }

    /// A server answering `first` once, then `then`.
    async fn server(first: u16, then: u16, expected: u64) -> MockServer {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(first).set_body_string("first"))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(then).set_body_string("then"))
            .expect(expected - 1)
            .mount(&s)
            .await;
        s
    }

    async fn both(first: u16, then: u16, calls: u64) -> Result<Response, HttpFailure> {
        let s = server(first, then, calls).await;
        let c = reqwest::Client::new();
        send(quick(), &s.uri(), || c.post(s.uri())).await
    }

    async fn once(first: u16, then: u16, calls: u64) -> Result<Response, OnceFailure> {
        let s = server(first, then, calls).await;
        let c = reqwest::Client::new();
        send_once(quick(), &s.uri(), || c.post(s.uri())).await
    }

    #[tokio::test]
    async fn a_read_is_retried_after_a_5xx_and_not_after_a_4xx() {
        assert!(both(500, 200, 2).await.is_ok());
        assert!(both(408, 200, 2).await.is_ok());
        let e = both(404, 200, 1).await.unwrap_err();
        assert!(
            matches!(&e, HttpFailure::Refused { status: 404, body, .. } if body == "first"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_creation_is_retried_only_when_certainly_not_processed() {
        assert!(once(503, 201, 2).await.is_ok());
        assert!(once(429, 201, 2).await.is_ok());
        let e = once(500, 201, 1).await.unwrap_err();
        assert!(
            matches!(&e, OnceFailure::Unknown { detail, .. } if detail == "HTTP 500"),
            "{e}"
        );
        let e = once(422, 201, 1).await.unwrap_err();
        assert!(
            matches!(
                &e,
                OnceFailure::Refused(HttpFailure::Refused { status: 422, .. })
            ),
            "{e}"
        );
    }
}
