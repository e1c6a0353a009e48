//! Routing: which e-invoicing platform a document goes to, decided here and nowhere else
//! (SPEC §9). A document is classified from its buyer and seller alone ([`decide`]): B2B through
//! the company's approved platform (PA), after a lookup of the buyer in the directory; B2G to
//! Chorus Pro directly, or through the PA when its connector says `public_buyers = "pa"`; B2C and
//! international sales out of the e-invoice flow (e-reporting, issue 15); out of scope when the
//! seller is not established in France. The syntax writers (`einvoice::ubl`, `einvoice::cii`)
//! know nothing of routes; a target declares the platform it sends to through its
//! `format::Layout`, whose route says which documents it takes ([`takes`]).

use crate::model::{Document, Party};

/// Where a document goes.
///
/// As a layout's route it names the platform: `ChorusB2g` (Chorus Pro directly) takes public
/// buyers; `PaB2b` (a PA) takes every other document (B2B ones are sent, the others held for
/// e-reporting); `PaB2g` (a PA that also takes public buyers) takes every document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Chorus Pro, the platform of public buyers (B2G), reached directly.
    ChorusB2g,
    /// A French business (a SIREN): through the PA, to the address the directory gives.
    PaB2b,
    /// A public buyer through the PA (`public_buyers = "pa"`).
    PaB2g,
    /// A private person (no SIREN, no VAT id): not e-invoiced, e-reported.
    B2c,
    /// A buyer established abroad: not e-invoiced, e-reported.
    International,
    /// A sale the reform does not cover (the seller is not established in France).
    OutOfScope,
}

impl Route {
    /// Short name used in reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::ChorusB2g => "chorus-b2g",
            Route::PaB2b => "pa-b2b",
            Route::PaB2g => "pa-b2g",
            Route::B2c => "b2c",
            Route::International => "international",
            Route::OutOfScope => "out-of-scope",
        }
    }

    /// The BAR note (BT-21 `BAR`, BT-22 this value; BR-FR-20's list) of a document on this
    /// route; none for Chorus Pro, which takes plain EN 16931.
    pub fn bar(self) -> Option<&'static str> {
        match self {
            Route::ChorusB2g => None,
            Route::PaB2b | Route::PaB2g => Some("B2B"),
            Route::B2c => Some("B2C"),
            Route::International => Some("B2BINT"),
            Route::OutOfScope => Some("OUTOFSCOPE"),
        }
    }

    /// The Flow API's `processingRule` of a flow on this route.
    pub fn processing_rule(self) -> &'static str {
        match self {
            Route::PaB2b => "B2B",
            Route::PaB2g | Route::ChorusB2g => "B2G",
            Route::B2c => "B2C",
            Route::International => "B2BInt",
            Route::OutOfScope => "OutOfScope",
        }
    }

    /// Whether the document leaves the e-invoice flow for e-reporting (B2C, international, out
    /// of scope): a PA never receives it as an invoice.
    pub fn is_e_reporting(self) -> bool {
        matches!(self, Route::B2c | Route::International | Route::OutOfScope)
    }
}

/// Where a PA connector sends the invoices of public buyers (`public_buyers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublicBuyers {
    /// To Chorus Pro directly, through the `chorus` target (the default: as before the reform).
    #[default]
    Chorus,
    /// Through the PA, which hands them to Chorus Pro (`processingRule = B2G`).
    Pa,
}

/// A document's route and why, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The route.
    pub route: Route,
    /// Why (the data it was decided from).
    pub why: String,
}

/// The country of a party (its billing address; `FR` when none is given).
fn country(p: &Party) -> String {
    p.billing_address
        .as_ref()
        .and_then(|a| a.country_code.as_deref())
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "FR".to_owned())
}

/// A party's SIREN: its own, else the nine digits of its SIRET, else those of a French VAT id
/// (`FR` + two key characters + the SIREN).
pub fn siren(p: &Party) -> Option<String> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let own = p.siren.as_deref().map(str::trim).filter(|s| digits(s, 9));
    let siret = p
        .siret
        .as_deref()
        .map(str::trim)
        .filter(|s| digits(s, 14))
        .map(|s| &s[..9]);
    let vat = p
        .vat_id
        .as_deref()
        .map(|v| v.trim().to_ascii_uppercase().replace(' ', ""))
        // Bytes, not characters: a pasted non-breaking space must not cut a character in two.
        .filter(|v| v.is_ascii() && v.len() == 13 && v.starts_with("FR") && digits(&v[4..], 9))
        .map(|v| v[4..].to_owned());
    own.or(siret).map(str::to_owned).or(vat)
}

/// The route of a document, with `public` the connector's setting for public buyers.
pub fn decide(doc: &Document, public: PublicBuyers) -> Decision {
    let (buyer, seller) = (&doc.buyer, &doc.seller);
    let d = |route: Route, why: String| Decision { route, why };
    let seller_country = country(seller);
    if seller_country != "FR" {
        return d(
            Route::OutOfScope,
            format!("the seller is established in {seller_country}, not in France"),
        );
    }
    let buyer_country = country(buyer);
    if buyer.chorus {
        return match public {
            PublicBuyers::Chorus => d(
                Route::ChorusB2g,
                "public buyer (chorus): sent to Chorus Pro directly".into(),
            ),
            PublicBuyers::Pa => d(
                Route::PaB2g,
                "public buyer (chorus), sent through the PA (public_buyers = \"pa\")".into(),
            ),
        };
    }
    if buyer_country != "FR" {
        return d(
            Route::International,
            format!("buyer established in {buyer_country}: international sale, e-reported"),
        );
    }
    if let Some(s) = siren(buyer) {
        return d(Route::PaB2b, format!("French business, SIREN {s}"));
    }
    // A SIREN or SIRET that is malformed still says a business, never a private person: the
    // PA target holds it for its SIREN.
    let given = [&buyer.siren, &buyer.siret]
        .into_iter()
        .filter_map(|v| v.as_deref().map(str::trim))
        .find(|v| !v.is_empty());
    if let Some(v) = given {
        return d(
            Route::PaB2b,
            format!("French business (SIREN or SIRET `{v}`, not 9 or 14 digits)"),
        );
    }
    match buyer
        .vat_id
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(vat) => d(
            Route::International,
            format!(
                "no SIREN and a VAT id {vat} that is not French: international sale, e-reported"
            ),
        ),
        None => d(
            Route::B2c,
            "no SIREN, no VAT id: a private person (B2C), e-reported".into(),
        ),
    }
}

/// The route of a B2B document once the directory has said whether its buyer is a public entity
/// (`entityType` `Public`) that the source does not flag `chorus`: through the PA as B2G when
/// the connector sends public buyers there, else held (a public buyer's invoice goes to Chorus
/// Pro, which needs the source's flag).
///
/// # Errors
///
/// The problem that holds the document.
pub fn with_directory(
    d: Decision,
    public_entity: bool,
    public: PublicBuyers,
) -> Result<Decision, crate::problem::Problem> {
    if d.route != Route::PaB2b || !public_entity {
        return Ok(d);
    }
    match public {
        PublicBuyers::Pa => Ok(Decision {
            route: Route::PaB2g,
            why: format!("{}, a public entity in the directory (entityType Public)", d.why),
        }),
        PublicBuyers::Chorus => Err(crate::problem::Problem::new(
            "directory-public-entity",
            "buyer.chorus",
            format!("{}: the directory lists it as a public entity (entityType Public), whose invoices go to Chorus Pro", d.why),
            "flag this customer as a public buyer (chorus) in the invoicing application, or set public_buyers = \"pa\" on the PA connector",
        )),
    }
}

/// The route of a document with public buyers on Chorus Pro directly.
pub fn of(doc: &Document) -> Option<Route> {
    Some(decide(doc, PublicBuyers::Chorus).route)
}

/// Whether a layout for `platform` takes `doc` (see [`Route`]).
pub fn takes(platform: Route, doc: &Document) -> bool {
    match platform {
        Route::ChorusB2g => doc.buyer.chorus,
        Route::PaB2b => !doc.buyer.chorus,
        Route::PaB2g => true,
        Route::B2c | Route::International | Route::OutOfScope => false,
    }
}

/// What holds a document taken by a PA layout out of the invoice flow: its e-reporting route
/// (B2C, international, out of scope), as a problem the report lists, with the document kept
/// held in the ledger so that the e-reporting of issue 15 finds it (`facto ledger list --state
/// held`, code `e-reporting`).
pub fn e_reporting(platform: Route, doc: &Document) -> Option<crate::problem::Problem> {
    let public = match platform {
        Route::PaB2b => PublicBuyers::Chorus,
        Route::PaB2g => PublicBuyers::Pa,
        _ => return None,
    };
    let d = decide(doc, public);
    d.route.is_e_reporting().then(|| {
        crate::problem::Problem::new(
            E_REPORTING,
            "buyer",
            format!(
                "route {} ({}): not an e-invoice for the PA; queued for e-reporting (issue 15)",
                d.route.as_str(),
                d.why
            ),
            "nothing to fix if the buyer is right; until facto e-reports (issue 15), declare the sale through the PA's portal — or give the buyer's SIREN (and a French address) if it is a French business",
        )
    })
}

/// A document's route as `preview` shows it: the route, the address it goes to when known, and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shown {
    /// The route ([`Route::as_str`]).
    pub route: &'static str,
    /// The addressing identifier (BT-49) it is sent to, when known.
    pub address: Option<String>,
    /// Why.
    pub why: String,
}

/// The problem code of a document held for e-reporting.
pub const E_REPORTING: &str = "e-reporting";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chorus_flag_routes_to_chorus_pro_and_nothing_else_does() {
        let mut doc = crate::mapping::tests::worked_invoice();
        doc.buyer.chorus = false;
        assert_ne!(of(&doc), Some(Route::ChorusB2g));
        doc.buyer.chorus = true;
        assert_eq!(of(&doc), Some(Route::ChorusB2g));
    }

    fn buyer(doc: &mut Document, siren: Option<&str>, vat: Option<&str>, country: Option<&str>) {
        doc.buyer.chorus = false;
        doc.buyer.siren = siren.map(str::to_owned);
        doc.buyer.siret = None;
        doc.buyer.vat_id = vat.map(str::to_owned);
        doc.buyer.billing_address = Some(crate::model::Address {
            country_code: country.map(str::to_owned),
            ..Default::default()
        });
    }

    #[test]
    fn a_vat_id_with_a_non_ascii_character_is_no_siren_and_no_panic() {
        let mut doc = crate::mapping::tests::worked_invoice();
        // 13 bytes, the fourth a non-breaking space's first byte.
        buyer(&mut doc, None, Some("FR1\u{a0}23456789"), Some("FR"));
        assert_eq!(siren(&doc.buyer), None);
        let _ = decide(&doc, PublicBuyers::Chorus);
        buyer(&mut doc, None, Some("FR12 345678901"), Some("FR"));
        assert_eq!(siren(&doc.buyer).as_deref(), Some("345678901"));
    }

    #[test]
    fn each_buyer_kind_has_its_route_and_bar_note() {
        let mut doc = crate::mapping::tests::worked_invoice();
        let route = |d: &Document, p| decide(d, p).route;
        buyer(
            &mut doc,
            Some("412358764"),
            Some("FR93412358764"),
            Some("FR"),
        );
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::PaB2b);
        assert_eq!(Route::PaB2b.bar(), Some("B2B"));
        assert_eq!(Route::PaB2b.processing_rule(), "B2B");
        // No SIREN field, but a SIRET or a French VAT id carries it.
        buyer(&mut doc, None, Some("FR93412358764"), None);
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::PaB2b);
        assert_eq!(siren(&doc.buyer).as_deref(), Some("412358764"));
        // A malformed SIREN is a business to correct, not a private person.
        buyer(&mut doc, Some("41235876"), None, Some("FR"));
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::PaB2b);
        assert_eq!(siren(&doc.buyer), None);
        // A private person: no SIREN, no VAT id.
        buyer(&mut doc, None, None, Some("FR"));
        let d = decide(&doc, PublicBuyers::Chorus);
        assert_eq!((d.route, d.route.bar()), (Route::B2c, Some("B2C")));
        assert!(d.why.contains("private person"), "{}", d.why);
        // A foreign buyer, by its address or by a foreign VAT id, even with a SIREN.
        buyer(&mut doc, None, Some("DE123456789"), Some("DE"));
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::International);
        buyer(&mut doc, None, Some("DE123456789"), None);
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::International);
        buyer(&mut doc, Some("412358764"), None, Some("BE"));
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::International);
        assert_eq!(Route::International.bar(), Some("B2BINT"));
        // A public buyer: Chorus Pro directly, or through the PA when the connector says so.
        buyer(&mut doc, Some("216901231"), None, Some("FR"));
        doc.buyer.chorus = true;
        assert_eq!(route(&doc, PublicBuyers::Chorus), Route::ChorusB2g);
        assert_eq!(route(&doc, PublicBuyers::Pa), Route::PaB2g);
        assert_eq!(Route::PaB2g.processing_rule(), "B2G");
        // A seller established abroad is out of scope.
        doc.seller.billing_address = Some(crate::model::Address {
            country_code: Some("ES".into()),
            ..Default::default()
        });
        let d = decide(&doc, PublicBuyers::Pa);
        assert_eq!(
            (d.route, d.route.bar()),
            (Route::OutOfScope, Some("OUTOFSCOPE"))
        );
    }

    #[test]
    fn a_public_entity_in_the_directory_is_never_sent_as_b2b() {
        let mut doc = crate::mapping::tests::worked_invoice();
        buyer(&mut doc, Some("216901231"), None, Some("FR"));
        let d = decide(&doc, PublicBuyers::Chorus);
        assert_eq!(
            with_directory(d.clone(), false, PublicBuyers::Chorus),
            Ok(d.clone())
        );
        let p = with_directory(d.clone(), true, PublicBuyers::Chorus).unwrap_err();
        assert_eq!(p.code, "directory-public-entity");
        let d = with_directory(d, true, PublicBuyers::Pa).unwrap();
        assert_eq!(d.route, Route::PaB2g);
    }

    /// A foreign buyer or a private person is never sent to a PA as B2B: a PA layout holds it
    /// for e-reporting; a public buyer goes to the PA only when the connector says so.
    #[test]
    fn a_pa_layout_holds_b2c_and_international_sales_for_e_reporting() {
        let mut doc = crate::mapping::tests::worked_invoice();
        buyer(&mut doc, Some("412358764"), None, Some("FR"));
        assert!(takes(Route::PaB2b, &doc) && e_reporting(Route::PaB2b, &doc).is_none());
        for (siren, vat, country) in [(None, None, None), (None, Some("DE123456789"), Some("DE"))] {
            buyer(&mut doc, siren, vat, country);
            assert!(takes(Route::PaB2b, &doc));
            let p = e_reporting(Route::PaB2b, &doc).expect("held for e-reporting");
            assert_eq!(p.code, E_REPORTING);
            assert!(p.message.contains("issue 15"), "{}", p.message);
            assert!(e_reporting(Route::ChorusB2g, &doc).is_none());
        }
        buyer(&mut doc, Some("216901231"), None, Some("FR"));
        doc.buyer.chorus = true;
        assert!(!takes(Route::PaB2b, &doc) && takes(Route::PaB2g, &doc));
        assert!(takes(Route::ChorusB2g, &doc));
        assert!(e_reporting(Route::PaB2g, &doc).is_none());
    }

    /// Routing is decided in one place: no other source file reads the buyer's `chorus` flag
    /// (tests only set it, to build documents).
    #[test]
    fn only_this_module_reads_the_chorus_flag() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut readers = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !name.ends_with(".rs") || path.ends_with("route.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source is readable");
                let code = text.as_str();
                let reads = code.match_indices(".chorus").any(|(i, m)| {
                    let word = |c: char| c.is_alphanumeric() || c == '_';
                    let rest = &code[i + m.len()..];
                    // `buyer.chorus`, not `..chorus` (struct update) nor `.chorus_pro`.
                    let field =
                        code[..i].ends_with(|c| word(c) || c == ')') && !rest.starts_with(word);
                    // Tests set the flag to build documents: that is no read.
                    let after = rest.trim_start();
                    let assigned = after.starts_with('=') && !after.starts_with("==");
                    field && !assigned
                });
                if reads {
                    readers.push(
                        path.strip_prefix(&root)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        assert!(
            readers.is_empty(),
            "the chorus flag is read outside route.rs: {readers:?}"
        );
    }
}
