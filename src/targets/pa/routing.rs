//! The route of each document the PA target takes (`crate::route` decides it) and, for a B2B
//! invoice, its address from the PA's directory: facto's cache while it is fresh, else a lookup
//! at send time; then the document as sent (BT-49, the BAR note of its route) checked again.
//! `preview` reads the cache only.

use std::sync::Arc;

use chrono::Utc;

use super::{directory, remote, PaRun};
use crate::format;
use crate::ledger::Ledger;
use crate::mapping::MappedDocument;
use crate::model::{Document, ElectronicAddress, Note};
use crate::problem::Problem;
use crate::route::{self, Route};
use crate::targets::TargetError;

/// A document ready for the PA: as it is sent (BT-49 from the directory, the BAR note of its
/// route), its route, and why it goes to that address.
pub struct PaReady {
    pub(super) md: Arc<MappedDocument>,
    pub(super) route: Route,
    pub(super) address: String,
    pub(super) why: String,
}

impl PaRun {
    /// When an expired directory answer is looked up again, as the hold reasons say it.
    pub(super) fn recheck(&self) -> String {
        format!(
            "{} h after the last lookup (directory_cache_hours)",
            self.cfg.directory_cache_hours
        )
    }

    /// For a document the PA receives as an invoice: the directory's cached answer for its
    /// buyer (when, and the address it gives or the problem that holds it); `None` when nothing
    /// is cached (or the document is no invoice for the PA). Reads the ledger only.
    #[allow(clippy::type_complexity)]
    fn cached_choice(
        &self,
        ledger: &dyn Ledger,
        doc: &Document,
    ) -> Result<Option<(String, Result<(directory::Line, String), Problem>)>, TargetError> {
        let d = route::decide(doc, self.cfg.public_buyers);
        if !matches!(d.route, Route::PaB2b | Route::PaB2g) {
            return Ok(None);
        }
        let buyer = &doc.buyer;
        let Some(siren) = route::siren(buyer) else {
            return Ok(None);
        };
        if self.cfg.directory_url.is_none() {
            let p = Self::no_directory(&self.name);
            return Ok(Some(("-".into(), Err(p))));
        }
        let Some(c) = directory::cached(ledger, &self.name, &siren)? else {
            return Ok(None);
        };
        let at = c.fetched_at.format("%Y-%m-%d %H:%M UTC").to_string();
        let public = directory::public_entity(&c.lines);
        if let Err(p) = route::with_directory(d, public, self.cfg.public_buyers) {
            return Ok(Some((at, Err(p))));
        }
        let wanted = buyer
            .electronic_address
            .as_ref()
            .filter(|e| e.scheme == "0225")
            .map(|e| e.value.as_str());
        let siret = buyer.siret.as_deref().map(str::trim);
        let choice = directory::choose(&c.lines, &siren, siret, wanted, &self.recheck());
        Ok(Some((at, choice)))
    }

    /// Why a B2B document is held when no directory is configured.
    fn no_directory(name: &str) -> Problem {
        Problem::new(
            "directory-not-configured",
            "buyer.siren",
            "the route of a B2B invoice cannot be decided without the PA's directory (its address, BT-49, comes from there)",
            format!("set directory_url (the PA's Directory Service, up to /v1) in connectors/{name}.toml"),
        )
    }

    /// The directory lines of `siren`: the cached answer while it is fresh, else the
    /// directory's (cached); a problem when no directory is configured.
    async fn directory_lines(
        &mut self,
        ledger: &dyn Ledger,
        siren: &str,
    ) -> Result<Result<Vec<directory::Line>, Problem>, TargetError> {
        let Some(base) = self.cfg.directory_url.clone() else {
            return Ok(Err(Self::no_directory(&self.name)));
        };
        if let Some(lines) = self.looked_up.get(siren) {
            return Ok(Ok(lines.clone()));
        }
        let now = Utc::now();
        if let Some(c) = directory::cached(ledger, &self.name, siren)? {
            if !directory::expired(&c, self.cfg.directory_cache_hours, now) {
                return Ok(Ok(c.lines));
            }
        }
        let lines = match directory::search(self.api()?, &base, siren).await {
            Ok(lines) => lines,
            // The directory refuses this SIREN (400, 422: a PA that checks more than facto):
            // this document is held, named, and the others go on; not cached, so the next run
            // asks again. Credentials refused, no answer or a 5xx still stop the target.
            Err(super::api::PaError::Refused {
                status,
                code,
                message,
            }) => {
                return Ok(Err(Problem::new(
                    "directory-refused",
                    "buyer.siren",
                    format!(
                        "the PA's directory refused the search of SIREN {siren} (HTTP {status}): {code}: {message}"
                    ),
                    "check the buyer's SIREN in the invoicing application; if it is right, ask the PA why its directory refuses it",
                )))
            }
            Err(e) => return Err(remote(&self.name, &e)),
        };
        let cached = directory::Cached {
            fetched_at: now,
            lines,
        };
        ledger.put_value(
            &directory::cache_key(&self.name, siren),
            &serde_json::to_value(&cached).unwrap_or_default(),
        )?;
        self.looked_up
            .insert(siren.to_owned(), cached.lines.clone());
        Ok(Ok(cached.lines))
    }

    /// The route of a document and the document as sent: held for e-reporting, held by the
    /// directory's answer, or with BT-49 and the BAR note set and the rules checked again.
    pub(super) async fn route(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
    ) -> Result<Result<PaReady, Vec<Problem>>, TargetError> {
        let layout = Self::layout(&self.cfg);
        if let Some(p) = layout.route.and_then(|r| route::e_reporting(r, &md.doc)) {
            return Ok(Err(vec![p]));
        }
        if let Some(p) = self.no_chorus_target(&md.doc) {
            return Ok(Err(vec![p]));
        }
        let mut decision = route::decide(&md.doc, self.cfg.public_buyers);
        let buyer = &md.doc.buyer;
        let Some(siren) = route::siren(buyer) else {
            return Ok(Err(vec![Problem::new(
                "buyer-siren",
                "buyer.siren",
                format!(
                    "route {} ({}): the buyer has no valid SIREN to look up in the directory",
                    decision.route.as_str(),
                    decision.why
                ),
                "give the buyer's SIREN (9 digits) or SIRET (14 digits)",
            )]));
        };
        let lines = match self.directory_lines(ledger, &siren).await? {
            Ok(l) => l,
            Err(p) => return Ok(Err(vec![p])),
        };
        decision = match route::with_directory(
            decision,
            directory::public_entity(&lines),
            self.cfg.public_buyers,
        ) {
            Ok(d) => d,
            Err(p) => return Ok(Err(vec![p])),
        };
        let wanted = buyer
            .electronic_address
            .as_ref()
            .filter(|e| e.scheme == "0225")
            .map(|e| e.value.as_str());
        let siret = buyer.siret.as_deref().map(str::trim);
        let (line, why) = match directory::choose(&lines, &siren, siret, wanted, &self.recheck()) {
            Ok(c) => c,
            Err(p) => return Ok(Err(vec![p])),
        };
        let mut sent = md.clone();
        sent.doc.buyer.electronic_address = Some(ElectronicAddress {
            scheme: "0225".into(),
            value: line.addressing_identifier.clone(),
        });
        if let Some(bar) = decision.route.bar() {
            let own = sent
                .doc
                .notes
                .iter()
                .find(|n| crate::einvoice::note_has_code(n, "BAR"));
            match own {
                Some(n) if n.text.trim() != bar => {
                    return Ok(Err(vec![Problem::new(
                        "route-bar",
                        "notes",
                        format!(
                            "the document's BAR note says {} but its route is {} (BAR {bar}: {})",
                            n.text.trim(),
                            decision.route.as_str(),
                            decision.why
                        ),
                        "correct the BAR note or the buyer's data (SIREN, country, VAT id)",
                    )]))
                }
                Some(_) => {}
                None => sent.doc.notes.push(Note {
                    subject_code: Some("BAR".into()),
                    text: bar.into(),
                }),
            }
        }
        // The company's wording of the notes the document lacks (else the writer's legal one).
        for (code, text) in self.notes.set() {
            if !sent
                .doc
                .notes
                .iter()
                .any(|n| crate::einvoice::note_has_code(n, code))
            {
                sent.doc.notes.push(Note {
                    subject_code: Some(code.into()),
                    text: text.into(),
                });
            }
        }
        // The rules again, on what is sent (the BAR note brings BR-FR-21 on BT-49), and a
        // public buyer's Chorus Pro rules (service code, engagement number), which the PA's
        // Chorus Pro applies.
        let mut problems = format::check(&layout, &sent, "");
        if decision.route == Route::PaB2g {
            let v = crate::einvoice::InvoiceView::new(&sent).with_profile(layout.profile);
            problems.extend(crate::einvoice::rules::chorus(&v));
            // What the structure asks, as the directory says it (service code, engagement).
            if let Some(s) = directory::structure(&lines, &line, siret) {
                problems.extend(crate::einvoice::rules::structure(&v, &s));
            }
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        Ok(Ok(PaReady {
            md: Arc::new(sent),
            route: decision.route,
            address: line.addressing_identifier,
            why,
        }))
    }

    /// A public buyer's invoice, for Chorus Pro directly (`public_buyers = "chorus"`), in a job
    /// without a Chorus Pro target: held, so that it is not left to no platform.
    fn no_chorus_target(&self, doc: &Document) -> Option<Problem> {
        let d = route::decide(doc, self.cfg.public_buyers);
        (d.route == Route::ChorusB2g && !self.cfg.chorus_in_job).then(|| {
            Problem::new(
                "public-buyer-no-chorus-target",
                "buyer",
                format!(
                    "route {} ({}): a public buyer's invoice goes to Chorus Pro, and this job has no Chorus Pro target",
                    d.route.as_str(),
                    d.why
                ),
                format!(
                    "add a chorus-pro target (or Chorus Pro portal files) to the job, or set public_buyers = \"pa\" on `{}` to send it through the PA",
                    self.name
                ),
            )
        })
    }

    /// What facto's directory cache already says holds a B2B document (no directory
    /// configured, a SIREN with no usable line), and a public buyer's invoice with no Chorus Pro
    /// target in the job; nothing is called.
    pub(super) fn cached_problems(
        &self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        if let Some(p) = self.no_chorus_target(&md.doc) {
            return Ok(vec![p]);
        }
        Ok(match self.cached_choice(ledger, &md.doc)? {
            Some((_, Err(p))) => vec![p],
            _ => Vec::new(),
        })
    }

    /// The route, and the address from facto's directory cache only (`preview` calls nothing:
    /// the directory is looked up at send time).
    pub(super) fn shown_route(&self, ledger: &dyn Ledger, doc: &Document) -> Option<route::Shown> {
        let d = route::decide(doc, self.cfg.public_buyers);
        let shown = |address: Option<String>, why: String| route::Shown {
            route: d.route.as_str(),
            address,
            why,
        };
        Some(match self.cached_choice(ledger, doc) {
            Ok(Some((at, Ok((line, why))))) => shown(
                Some(line.addressing_identifier),
                format!("{}; {why} (directory answer of {at})", d.why),
            ),
            Ok(Some((_, Err(p)))) => shown(None, format!("{}; {}", d.why, p.message)),
            Ok(None) if d.route == Route::PaB2b || d.route == Route::PaB2g => shown(
                None,
                format!(
                    "{}; the directory is looked up at send time (preview reads only facto's cache, which has no answer for this SIREN yet)",
                    d.why
                ),
            ),
            _ => shown(None, d.why.clone()),
        })
    }
}
