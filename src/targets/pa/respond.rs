//! The buyer's statuses about a supplier invoice received through the PA (issue 15 §3;
//! `../shared/reference/notes/fr-pa-flow-api.md` §6): 204 "Prise en charge" (taken over), 205
//! "Approuvée" (approved), 207 "En litige" (disputed: a reason, and the action expected of the
//! seller) and 210 "Refusée" (refused, final: a reason from the reform's shorter list). Each is a
//! CDAR issued by the company (role BY) to the invoice's seller (role SE, at its electronic
//! address), the PPF too for a 210, posted as a CDAR flow through the same exactly-once
//! protocol as every status ([`super::status_run`]): one ledger record per (invoice, status)
//! under the target `<pa>#status`.

use chrono::{NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::cdar_write::{type_code, write, CdarParty, Detail, InvoiceRef, StatusMessage};
use super::config::PaConfig;
use super::status_run::{Message, StatusKind};
use super::PaRun;
use crate::ledger::{Ledger, Record};
use crate::mapping::MappedDocument;
use crate::model::Document;
use crate::problem::Problem;
use crate::targets::TargetError;

/// A status the buyer sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerStatus {
    /// 204 Prise en charge.
    TakenOver,
    /// 205 Approuvée.
    Approved,
    /// 207 En litige.
    Disputed,
    /// 210 Refusée.
    Refused,
}

/// The reasons a status may give (BR-FR-CDV-CL-09).
pub const REASONS: &[&str] = &[
    "RETRAIT_MAN_SERV",
    "ST_CT_NON_DECLAR",
    "SUPPR_COMP_AVOIR",
    "TRANSF_PMNT_REGIE",
    "CONTACT_ACHTR",
    "NON_TRANSMISE",
    "JUSTIF_ABS",
    "ROUTAGE_ERR",
    "AUTRE",
    "COORD_BANC_ERR",
    "TX_TVA_ERR",
    "MONTANTTOTAL_ERR",
    "CALCUL_ERR",
    "NON_CONFORME",
    "DOUBLON",
    "DEST_INC",
    "DEST_ERR",
    "TRANSAC_INC",
    "EMMET_INC",
    "CONTRAT_TERM",
    "DOUBLE_FACT",
    "CMD_ERR",
    "ADR_ERR",
    "SIRET_ERR",
    "CODE_ROUTAGE_ERR",
    "REF_CT_ABSENT",
    "REF_ERR",
    "PU_ERR",
    "REM_ERR",
    "QTE_ERR",
    "ART_ERR",
    "MODPAI_ERR",
    "QUALITE_ERR",
    "LIVR_INCOMP",
];

/// The reasons a refusal (210) may give (BR-FR-CDV-CL-09, status 210).
pub const REFUSAL_REASONS: &[&str] = &[
    "TX_TVA_ERR",
    "MONTANTTOTAL_ERR",
    "CALCUL_ERR",
    "NON_CONFORME",
    "DOUBLON",
    "DEST_ERR",
    "TRANSAC_INC",
    "EMMET_INC",
    "CONTRAT_TERM",
    "DOUBLE_FACT",
    "CMD_ERR",
    "ADR_ERR",
    "REF_CT_ABSENT",
];

/// The actions a dispute may expect of the seller (MDT-121): none, a partial credit note, a
/// corrective invoice, ...
pub const ACTIONS: &[&str] = &["NOA", "PIN", "NIN", "CNF", "CNP", "CNA", "OTH"];

impl BuyerStatus {
    /// `204`, `205`, `207` or `210` (or the words `taken-over`, `approved`, `disputed`,
    /// `refused`).
    pub fn parse(s: &str) -> Option<BuyerStatus> {
        Some(match s.trim() {
            "204" | "taken-over" => BuyerStatus::TakenOver,
            "205" | "approved" => BuyerStatus::Approved,
            "207" | "disputed" => BuyerStatus::Disputed,
            "210" | "refused" => BuyerStatus::Refused,
            _ => return None,
        })
    }

    /// The reform's code (MDT-105).
    pub fn code(self) -> u16 {
        match self {
            BuyerStatus::TakenOver => 204,
            BuyerStatus::Approved => 205,
            BuyerStatus::Disputed => 207,
            BuyerStatus::Refused => 210,
        }
    }

    /// The reform's label (MDT-106).
    pub fn label(self) -> &'static str {
        match self {
            BuyerStatus::TakenOver => "Prise en charge",
            BuyerStatus::Approved => "Approuvée",
            BuyerStatus::Disputed => "En litige",
            BuyerStatus::Refused => "Refusée",
        }
    }

    /// The UN/CEFACT status code that goes with it (MDT-88), as in the FNFE examples.
    fn un_status(self) -> &'static str {
        match self {
            BuyerStatus::TakenOver => "45",
            BuyerStatus::Approved => "1",
            BuyerStatus::Disputed => "46",
            BuyerStatus::Refused => "50",
        }
    }

    /// A dispute and a refusal give their reason (BR-FR-CDV-15).
    fn needs_reason(self) -> bool {
        matches!(self, BuyerStatus::Disputed | BuyerStatus::Refused)
    }
}

/// What the buyer answers: the status and, for a dispute or a refusal, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: BuyerStatus,
    /// The reason code (207, 210).
    pub reason: Option<String>,
    /// The reason in words, for the seller.
    pub text: String,
    /// The action expected of the seller (207, 210).
    pub action: Option<String>,
}

/// A response that cannot be sent as given (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResponseError(pub String);

impl Response {
    /// Checks the response against the reform's lists before anything is recorded.
    ///
    /// # Errors
    ///
    /// A reason missing, not in its list or given to a status that takes none; an unknown
    /// action; a text too long.
    pub fn check(&self) -> Result<(), ResponseError> {
        let code = self.status.code();
        match (&self.reason, self.status.needs_reason()) {
            (None, true) => {
                let list = match self.status {
                    BuyerStatus::Refused => REFUSAL_REASONS,
                    _ => REASONS,
                };
                return Err(ResponseError(format!(
                    "status {code} needs a reason (--reason): one of {}",
                    list.join(", ")
                )));
            }
            (Some(_), false) | (None, false) if self.action.is_some() => {
                return Err(ResponseError(format!(
                    "status {code} expects no action of the seller: --action goes with 207 or 210"
                )));
            }
            (Some(r), false) => {
                return Err(ResponseError(format!(
                    "status {code} takes no reason (`{r}`): a reason goes with 207 or 210"
                )));
            }
            (Some(r), true) => {
                let list = match self.status {
                    BuyerStatus::Refused => REFUSAL_REASONS,
                    _ => REASONS,
                };
                if !list.contains(&r.as_str()) {
                    return Err(ResponseError(format!(
                        "`{r}` is not a reason status {code} may give: one of {}",
                        list.join(", ")
                    )));
                }
            }
            (None, false) => {}
        }
        if let Some(a) = &self.action {
            if !ACTIONS.contains(&a.as_str()) {
                return Err(ResponseError(format!(
                    "`{a}` is not an action the reform knows: one of {} (NIN: a corrective invoice, CNF: a full credit note, CNP: a partial one, ...)",
                    ACTIONS.join(", ")
                )));
            }
        }
        if !self.status.needs_reason() && !self.text.is_empty() {
            return Err(ResponseError(format!(
                "status {code} carries no text: --text goes with the reason of a 207 or a 210"
            )));
        }
        if self.text.chars().count() > 1024 || self.text.chars().any(char::is_control) {
            return Err(ResponseError(
                "--text is at most 1 024 characters on one line".into(),
            ));
        }
        Ok(())
    }
}

/// The ledger target of a PA's buyer statuses: `<pa>#status`.
pub fn target_name(pa: &str) -> String {
    format!("{pa}#status")
}

/// The record id of one status about one received invoice: `<document id>#<code>`.
pub fn record_id(doc_id: &str, status: BuyerStatus) -> String {
    format!("{doc_id}#{}", status.code())
}

/// The company that answers: its SIREN and name.
#[derive(Debug, Clone)]
pub struct Buyer {
    /// SIREN.
    pub siren: String,
    /// Name.
    pub name: String,
}

/// What the checks learned: the seller's SIREN and electronic address.
pub struct Ready {
    /// The seller's SIREN.
    pub seller_siren: String,
    /// Its electronic address for statuses.
    pub address: String,
}

/// One buyer status about one received invoice, sent through the PA it came from.
pub struct RespondRun {
    name: String,
    pa: PaRun,
    buyer: Buyer,
    response: Response,
}

impl RespondRun {
    /// The status `response` through PA `pa`, from the company `buyer`.
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn new(
        pa: &str,
        cfg: &PaConfig,
        buyer: Buyer,
        response: Response,
    ) -> Result<Self, TargetError> {
        Ok(RespondRun {
            name: target_name(pa),
            pa: PaRun::new(pa, cfg, false)?,
            buyer,
            response,
        })
    }
}

impl StatusKind for RespondRun {
    type Ready = Ready;

    fn target(&self) -> &str {
        &self.name
    }

    fn pa(&self) -> &PaRun {
        &self.pa
    }

    fn pa_mut(&mut self) -> &mut PaRun {
        &mut self.pa
    }

    /// The seller's SIREN (the status names the invoice by it) and its electronic address
    /// (BT-34, where the status goes).
    async fn check(
        &mut self,
        _ledger: &dyn Ledger,
        md: &MappedDocument,
        _rec: &Record,
    ) -> Result<Result<Ready, Vec<Problem>>, TargetError> {
        let seller = &md.doc.seller;
        let Some(siren) = crate::route::siren(seller) else {
            return Ok(Err(vec![Problem::new(
                "status-seller-siren",
                "seller.siren",
                "the invoice names no SIREN for its seller (BT-30): a status names the invoice by its seller's SIREN",
                "ask the seller for an invoice that names its SIREN",
            )]));
        };
        // The seller's address for statuses: its BT-34 (scheme 0225), else its SIREN, the
        // directory's address of a company as a whole.
        let address = seller
            .electronic_address
            .as_ref()
            .filter(|a| a.scheme == "0225" && !a.value.trim().is_empty())
            .map_or_else(|| siren.clone(), |a| a.value.trim().to_owned());
        Ok(Ok(Ready {
            seller_siren: siren,
            address,
        }))
    }

    fn message(&self, md: &MappedDocument, ready: &Ready) -> Message {
        let doc = &md.doc;
        let r = &self.response;
        let code = r.status.code();
        let file = cdar(doc, &self.buyer, r, ready, Utc::now().naive_utc());
        let safe: String = crate::fsutil::safe_name(&doc.number)
            .chars()
            .take(180)
            .collect();
        let why = r
            .reason
            .as_deref()
            .map(|x| format!(", reason {x}"))
            .unwrap_or_default();
        Message {
            file_name: format!("CDAR_{code}_{safe}.xml"),
            file,
            label: format!(
                "status {code} {} of {} from {}{why}",
                r.status.label(),
                doc.number,
                doc.seller.name
            ),
        }
    }
}

/// The status message about the received invoice `doc`, issued by `buyer` to its seller at
/// `ready`'s address (and to the PPF for a refusal), written at `now`.
pub fn cdar(
    doc: &Document,
    buyer: &Buyer,
    r: &Response,
    ready: &Ready,
    now: NaiveDateTime,
) -> Vec<u8> {
    let type_code = type_code(doc);
    let code = r.status.code();
    let h = hex::encode(Sha256::digest(
        format!("{}\0{}\0{}", ready.seller_siren, doc.number, code).as_bytes(),
    ));
    let id = format!("{}_{code}_{}", doc.number, &h[..12]);
    let name = format!("{} {code} {}", doc.number, r.status.label());
    let details = match &r.reason {
        Some(reason) => vec![Detail {
            reason: Some((reason, &r.text)),
            action: r.action.as_deref().map(|a| (a, "")),
            amount: None,
        }],
        None => Vec::new(),
    };
    write(&StatusMessage {
        id: &id,
        name: &name,
        written_at: now,
        issuer: CdarParty {
            siren: Some(&buyer.siren),
            name: &buyer.name,
            role: "BY",
            address: None,
        },
        recipients: vec![CdarParty {
            siren: Some(&ready.seller_siren),
            name: &doc.seller.name,
            role: "SE",
            address: Some(&ready.address),
        }],
        // A refusal goes to the PPF too (it is one of the statuses it must know).
        to_ppf: r.status == BuyerStatus::Refused,
        status_at: now,
        invoice: InvoiceRef {
            number: &doc.number,
            type_code: &type_code,
            issue_date: doc.issue_date,
            received_at: None,
            seller_siren: &ready.seller_siren,
        },
        code,
        label: r.status.label(),
        un_status: r.status.un_status(),
        details,
    })
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
