//! The Xero contacts of a page's customers, in bulk: looked up by number (`GET /Contacts` with a
//! `where` of `ContactNumber=="…" OR …`, 50 numbers a call: Xero's `IDs` filter takes only its
//! own ids and it has no `ContactNumbers` filter), the missing ones created together
//! (`PUT /Contacts`, 50 a call, under an idempotency key derived from their numbers, so a retry
//! or a lost answer creates nothing twice). A contact Xero refuses holds its documents with
//! Xero's message instead of stopping the run.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{messages, remote, XeroRun};
use crate::mapping::MappedDocument;
use crate::model::Party;
use crate::problem::Problem;
use crate::targets::TargetError;

/// Contact numbers in one lookup, contacts in one creation (Xero advises 50 per request; a
/// lookup of 50 numbers also stays within one page of 100 contacts).
const PER_CALL: usize = 50;

/// A contact number inside a `where` string literal.
fn literal(number: &str) -> String {
    number.replace('\\', "\\\\").replace('"', "\\\"")
}

impl XeroRun {
    /// Finds, or creates, the contacts of these documents' customers that this run does not
    /// know yet: one lookup and at most one creation per 50 customers.
    pub(super) async fn resolve_contacts(
        &mut self,
        ledger: &dyn crate::ledger::Ledger,
        mds: &[&MappedDocument],
    ) -> Result<(), TargetError> {
        let mut wanted: BTreeMap<String, &Party> = BTreeMap::new();
        for md in mds {
            let (n, party) = self.counterparty(&md.doc);
            if !self.contacts.contains_key(n) && !self.contact_errors.contains_key(n) {
                wanted.entry(n.to_owned()).or_insert(party);
            }
        }
        let numbers: Vec<String> = wanted.keys().cloned().collect();
        self.lookup_contacts(&numbers).await?;
        let missing: Vec<(String, &Party)> = wanted
            .into_iter()
            .filter(|(n, _)| !self.contacts.contains_key(n))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if ledger.worker().is_none() {
            return self.create_missing(missing).await;
        }
        // Workers sharing the ledger create contacts one at a time, each looking the missing
        // ones up again first: a contact another worker created meanwhile is found, not made
        // twice.
        let name = format!("xero-contacts\0{}", self.name);
        crate::targets::one_at_a_time(ledger, &name, async {
            let numbers: Vec<String> = missing.iter().map(|(n, _)| n.clone()).collect();
            self.lookup_contacts(&numbers).await?;
            let still: Vec<(String, &Party)> = missing
                .into_iter()
                .filter(|(n, _)| !self.contacts.contains_key(n))
                .collect();
            self.create_missing(still).await
        })
        .await?
    }

    /// Creates these contacts, 50 a call.
    async fn create_missing(&mut self, missing: Vec<(String, &Party)>) -> Result<(), TargetError> {
        for chunk in missing.chunks(PER_CALL) {
            self.create_contacts(chunk).await?;
        }
        Ok(())
    }

    /// Looks these contact numbers up (50 a call) and keeps the ids Xero has for them.
    pub(super) async fn lookup_contacts(&mut self, numbers: &[String]) -> Result<(), TargetError> {
        let wanted: std::collections::BTreeSet<&str> = numbers.iter().map(String::as_str).collect();
        for chunk in numbers.chunks(PER_CALL) {
            let cond: Vec<String> = chunk
                .iter()
                .map(|n| format!("ContactNumber==\"{}\"", literal(n)))
                .collect();
            let found = self
                .get("/Contacts", &[("where", cond.join(" OR "))])
                .await?;
            for c in found
                .get("Contacts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let number = c.get("ContactNumber").and_then(Value::as_str);
                let id = c.get("ContactID").and_then(Value::as_str);
                if let (Some(n), Some(id)) = (number, id) {
                    if wanted.contains(n) {
                        self.contacts
                            .entry(n.to_owned())
                            .or_insert_with(|| id.to_owned());
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates these contacts in one call; each item of the answer is its own result.
    async fn create_contacts(&mut self, chunk: &[(String, &Party)]) -> Result<(), TargetError> {
        let list: Vec<Value> = chunk
            .iter()
            .map(|(number, b)| {
                let mut c = json!({"Name": b.name, "ContactNumber": number});
                if let Some(m) = &b.email {
                    c["EmailAddress"] = json!(m);
                }
                if let Some(v) = &b.vat_id {
                    c["TaxNumber"] = json!(v);
                }
                c
            })
            .collect();
        let body = json!({ "Contacts": list }).to_string();
        let numbers: Vec<&str> = chunk.iter().map(|(n, _)| n.as_str()).collect();
        let key = format!(
            "facto-contacts-{}",
            &hex::encode(Sha256::digest(format!(
                "{}\0{}",
                self.job,
                numbers.join("\0")
            )))[..48]
        );
        let answer = self
            .api()?
            .call(
                Method::PUT,
                "/Contacts",
                &[("summarizeErrors", "false".into())],
                Some(&body),
                Some(&key),
            )
            .await
            .map_err(|e| remote(&self.name, &e))?;
        let items: &[Value] = answer
            .get("Contacts")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        for (i, number) in numbers.iter().enumerate() {
            // Xero answers in request order, each item with its number: the number decides,
            // the position only for an item without one.
            let by_number = items
                .iter()
                .find(|x| x.get("ContactNumber").and_then(Value::as_str) == Some(*number));
            let item = by_number.or_else(|| {
                items
                    .get(i)
                    .filter(|x| x.get("ContactNumber").and_then(Value::as_str).is_none())
            });
            let refused = item.is_none_or(|x| {
                x.get("HasValidationErrors").and_then(Value::as_bool) == Some(true)
                    || x.get("HasErrors").and_then(Value::as_bool) == Some(true)
            });
            let id = item
                .and_then(|x| x.get("ContactID"))
                .and_then(Value::as_str);
            match id {
                Some(id) if !refused => {
                    self.contacts.insert((*number).to_owned(), id.to_owned());
                }
                _ => {
                    let why = item.map_or_else(|| "no answer for it".to_owned(), messages);
                    self.contact_errors.insert((*number).to_owned(), why);
                }
            }
        }
        Ok(())
    }

    /// The contact of a document's customer, or why Xero has none (found in bulk before, or
    /// alone here when the page's lookup did not cover it).
    pub(super) async fn contact(
        &mut self,
        ledger: &dyn crate::ledger::Ledger,
        md: &MappedDocument,
    ) -> Result<Result<String, Vec<Problem>>, TargetError> {
        let (n, _) = self.counterparty(&md.doc);
        if !self.contacts.contains_key(n) && !self.contact_errors.contains_key(n) {
            self.resolve_contacts(ledger, &[md]).await?;
        }
        if let Some(id) = self.contacts.get(n) {
            return Ok(Ok(id.clone()));
        }
        let why = self
            .contact_errors
            .get(n)
            .cloned()
            .unwrap_or_else(|| "no answer for it".into());
        let field = match self.side {
            crate::mapping::Side::Sales => "buyer.customer_id",
            crate::mapping::Side::Purchases => "seller.siren",
        };
        Ok(Err(vec![Problem::new(
            "xero-contact",
            field,
            format!("Xero did not create contact {n}: {why}"),
            "correct the customer in the source (Xero wants a unique name per contact), or create the contact in Xero with this contact number",
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn a_quote_in_a_number_stays_inside_the_where_literal() {
        assert_eq!(literal("C001"), "C001");
        assert_eq!(literal("A\"B\\C"), "A\\\"B\\\\C");
    }
}
