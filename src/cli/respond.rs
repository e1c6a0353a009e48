//! `facto respond`: the company's status about a supplier invoice received through a PA, sent
//! back to its seller ([`crate::received`]).

use super::{fail, ledger_failure, Context, Failure};
use crate::received::RespondError;
use crate::report::exit;
use crate::targets::pa::respond::Response;

/// `facto respond DOC STATUS`: sends the status once; asked again, says when it was sent.
pub(super) async fn respond(
    cx: &mut Context<'_>,
    job: Option<&str>,
    doc: &str,
    response: Response,
) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    match crate::received::respond(&cfg, ledger, job, doc, response, &cx.who).await {
        Ok(done) => {
            if cx.out.is_json() {
                cx.out.json(&done)?;
            } else {
                cx.out.text(&format!("{}\n", done.message))?;
            }
            Ok(exit::OK)
        }
        Err(e @ RespondError::Usage(_)) => Err(fail(exit::USAGE, e)),
        Err(e @ RespondError::Refused(_)) => Err(fail(exit::PROBLEMS, e)),
        Err(e @ RespondError::Remote(_)) => Err(fail(exit::UNREACHABLE, e)),
        Err(RespondError::Ledger(e)) => Err(ledger_failure(e)),
    }
}
