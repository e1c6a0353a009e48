//! `facto chorus complete|recycle`: answers to Chorus Pro about an invoice it holds.

use super::{fail, ledger_failure, ChorusCmd, Context, Failure};
use crate::report::exit;

/// `facto chorus complete|recycle`: one answer to Chorus Pro about one invoice.
pub(super) async fn chorus_answer(cx: &mut Context<'_>, cmd: &ChorusCmd) -> Result<u8, Failure> {
    use crate::config::Connector;
    use crate::targets::chorus::answer::{self, Answer, AnswerError};
    let cfg = cx.load()?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let (doc, target, answer) = match cmd {
        ChorusCmd::Complete {
            doc,
            comment,
            attach,
            target,
        } => {
            let mut files = Vec::with_capacity(attach.len());
            for path in attach {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // The limits first, so that a huge file is never read.
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                answer::check_file(&name, size).map_err(|e| fail(exit::USAGE, e))?;
                let bytes = std::fs::read(path).map_err(|e| {
                    fail(
                        exit::USAGE,
                        anyhow::anyhow!("cannot read {}: {e}", path.display()),
                    )
                })?;
                files.push((name, bytes));
            }
            let answer = Answer::Complete {
                comment: comment.clone(),
                files,
            };
            (doc, target, answer)
        }
        ChorusCmd::Recycle {
            doc,
            buyer,
            service,
            commitment,
            comment,
            target,
        } => {
            let routing = crate::targets::chorus::api::Routing {
                buyer_siret: buyer.clone(),
                service: service.clone(),
                commitment: commitment.clone(),
                comment: comment.clone(),
            };
            (doc, target, Answer::Recycle(routing))
        }
    };
    let records: Vec<_> = ledger
        .find(doc)
        .map_err(ledger_failure)?
        .into_iter()
        .filter(|r| {
            matches!(
                cfg.connectors.get(&r.key.target),
                Some(Connector::ChorusPro(_))
            )
        })
        .filter(|r| target.as_ref().is_none_or(|t| *t == r.key.target))
        .collect();
    let rec = match records.as_slice() {
        [r] => r,
        [] => {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!("no Chorus Pro record for `{doc}` (see `facto ledger show {doc}`)"),
            ))
        }
        many => {
            let targets: Vec<String> = many.iter().map(|r| r.key.to_string()).collect();
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!(
                    "`{doc}` went to several Chorus Pro targets ({}); choose one with --target",
                    targets.join(", ")
                ),
            ));
        }
    };
    let Some(Connector::ChorusPro(chorus)) = cfg.connectors.get(&rec.key.target) else {
        return Err(fail(exit::USAGE, anyhow::anyhow!("no Chorus Pro target")));
    };
    match answer::send(chorus, ledger, &rec.key, answer, &cx.who).await {
        Ok(done) => {
            if cx.out.is_json() {
                cx.out
                    .json(&serde_json::json!({"doc": rec.key.to_string(), "done": done}))?;
            } else {
                cx.out.text(&format!("{done}\n"))?;
            }
            Ok(exit::OK)
        }
        Err(e @ AnswerError::NotApplicable(_)) => Err(fail(exit::USAGE, e)),
        Err(e @ AnswerError::Refused(_)) => Err(fail(exit::PROBLEMS, e)),
        Err(e @ AnswerError::Remote(_)) => Err(fail(exit::UNREACHABLE, e)),
        Err(AnswerError::Ledger(e)) => Err(ledger_failure(e)),
    }
}
