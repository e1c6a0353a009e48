//! The e-reporting periods of a VAT regime (`../shared/reference/notes/fr-pa-flow-api.md` §10):
//! ten-day periods for the normal regime paid monthly (1–10 due the 20th, 11–20 due the last
//! day of the month, 21 to the end due the 10th of the next month), calendar months for the
//! normal regime paid quarterly and the simplified regime, two-month periods (January–February,
//! March–April...) for the franchise. The references give no due date for the last three: the
//! preview says so rather than guess.

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Serialize;

use crate::company::VatRegime;

/// One reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Period {
    /// First day, included.
    pub start: NaiveDate,
    /// Last day, included.
    pub end: NaiveDate,
    /// When its report is due, where the references say.
    pub due: Option<NaiveDate>,
}

fn month_start(d: NaiveDate) -> Option<NaiveDate> {
    d.with_day(1)
}

fn month_end(d: NaiveDate) -> Option<NaiveDate> {
    month_start(d)?
        .checked_add_months(Months::new(1))?
        .checked_sub_days(Days::new(1))
}

/// The period of `regime` that holds `day` (`None` only at the calendar's ends).
pub fn period_of(regime: VatRegime, day: NaiveDate) -> Option<Period> {
    let first = month_start(day)?;
    let last = month_end(day)?;
    Some(match regime {
        VatRegime::NormalMonthly => {
            let on = |d: u32| first.with_day(d);
            match day.day() {
                1..=10 => Period {
                    start: first,
                    end: on(10)?,
                    due: on(20),
                },
                11..=20 => Period {
                    start: on(11)?,
                    end: on(20)?,
                    due: Some(last),
                },
                _ => Period {
                    start: on(21)?,
                    end: last,
                    due: first
                        .checked_add_months(Months::new(1))
                        .and_then(|m| m.with_day(10)),
                },
            }
        }
        VatRegime::NormalQuarterly | VatRegime::Simplified => Period {
            start: first,
            end: last,
            due: None,
        },
        VatRegime::Franchise => {
            let start = first.with_month(day.month0() / 2 * 2 + 1)?;
            Period {
                start,
                end: month_end(start.checked_add_months(Months::new(1))?)?,
                due: None,
            }
        }
    })
}

/// Whether the period is over on `today` (its report may be built).
pub fn closed(p: &Period, today: NaiveDate) -> bool {
    p.end < today
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn p(start: &str, end: &str, due: Option<&str>) -> Period {
        Period {
            start: day(start),
            end: day(end),
            due: due.map(day),
        }
    }

    #[test]
    fn the_normal_monthly_regime_reports_by_ten_days() {
        let r = VatRegime::NormalMonthly;
        assert_eq!(
            period_of(r, day("2026-10-01")),
            Some(p("2026-10-01", "2026-10-10", Some("2026-10-20")))
        );
        assert_eq!(
            period_of(r, day("2026-10-20")),
            Some(p("2026-10-11", "2026-10-20", Some("2026-10-31")))
        );
        assert_eq!(
            period_of(r, day("2026-10-31")),
            Some(p("2026-10-21", "2026-10-31", Some("2026-11-10")))
        );
        // February, a leap year, and December into the next year.
        assert_eq!(
            period_of(r, day("2028-02-29")),
            Some(p("2028-02-21", "2028-02-29", Some("2028-03-10")))
        );
        assert_eq!(
            period_of(r, day("2026-12-25")),
            Some(p("2026-12-21", "2026-12-31", Some("2027-01-10")))
        );
        assert_eq!(
            period_of(r, day("2027-02-15")),
            Some(p("2027-02-11", "2027-02-20", Some("2027-02-28")))
        );
    }

    #[test]
    fn other_regimes_report_by_month_or_two_months() {
        for r in [VatRegime::NormalQuarterly, VatRegime::Simplified] {
            assert_eq!(
                period_of(r, day("2026-11-17")),
                Some(p("2026-11-01", "2026-11-30", None))
            );
        }
        let f = VatRegime::Franchise;
        assert_eq!(
            period_of(f, day("2026-01-31")),
            Some(p("2026-01-01", "2026-02-28", None))
        );
        assert_eq!(
            period_of(f, day("2026-02-01")),
            Some(p("2026-01-01", "2026-02-28", None))
        );
        assert_eq!(
            period_of(f, day("2026-12-31")),
            Some(p("2026-11-01", "2026-12-31", None))
        );
        assert!(closed(
            &p("2026-11-01", "2026-11-30", None),
            day("2026-12-01")
        ));
        assert!(!closed(
            &p("2026-11-01", "2026-11-30", None),
            day("2026-11-30")
        ));
    }

    #[test]
    fn every_day_of_several_years_is_in_exactly_one_period_which_holds_it() {
        let regimes = [
            VatRegime::NormalMonthly,
            VatRegime::NormalQuarterly,
            VatRegime::Simplified,
            VatRegime::Franchise,
        ];
        for r in regimes {
            let mut d = day("2026-01-01");
            let mut prev: Option<Period> = None;
            while d < day("2029-01-01") {
                let q = period_of(r, d).unwrap();
                assert!(q.start <= d && d <= q.end, "{r:?} {d}");
                if let Some(prev) = prev.filter(|x| *x != q) {
                    assert_eq!(
                        prev.end.succ_opt(),
                        Some(q.start),
                        "{r:?}: no gap, no overlap"
                    );
                }
                if let Some(due) = q.due {
                    assert!(due > q.end, "due after its end");
                }
                prev = Some(q);
                d = d.succ_opt().unwrap();
            }
        }
    }
}
