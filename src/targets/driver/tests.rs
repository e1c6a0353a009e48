//! The driver with a fake target, without HTTP: every outcome, a crash at each point of a
//! delivery (the future dropped where the process would die), and every lookup answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::ledger::{MemLedger, RecordKey};

/// What the fake platform does with the next lot sent to it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    Take,
    Refuse,
    Down,
    LostAnswer {
        taken: bool,
    },
    /// The first document taken, the second refused, the rest unanswered.
    Mixed,
    /// The process dies during the call, before or after the platform took the lot.
    Die {
        taken: bool,
    },
}

#[derive(Default)]
struct Platform {
    /// Number → remote id of what the platform holds.
    held: BTreeMap<String, String>,
    /// Calls that took something, by lot.
    calls: Vec<Vec<String>>,
}

struct Fake {
    platform: Arc<Mutex<Platform>>,
    script: VecDeque<Script>,
    grace: u64,
    lot: usize,
    idempotent: bool,
    hold: Vec<String>,
    lookup_down: bool,
    settle_down: bool,
}

impl Fake {
    fn new(platform: &Arc<Mutex<Platform>>) -> Fake {
        Fake {
            platform: Arc::clone(platform),
            script: VecDeque::new(),
            grace: 60,
            lot: 1,
            idempotent: false,
            hold: Vec::new(),
            lookup_down: false,
            settle_down: false,
        }
    }

    fn take(&self, numbers: &[String]) {
        let mut p = self.platform.lock().unwrap();
        for n in numbers {
            let id = format!("R-{n}");
            p.held.entry(n.clone()).or_insert(id);
        }
        p.calls.push(numbers.to_vec());
    }
}

fn stop() -> TargetError {
    TargetError::Remote {
        target: "fake".into(),
        detail: "down".into(),
    }
}

fn receipt(n: &str) -> Receipt {
    Receipt {
        remote_id: Some(format!("R-{n}")),
        status: Some("TAKEN".into()),
        key: None,
        note: format!("taken as R-{n}"),
    }
}

impl Target for Fake {
    type Ready = ();
    type Payload = Vec<String>;

    fn name(&self) -> &str {
        "fake"
    }

    fn grace_minutes(&self) -> u64 {
        self.grace
    }

    fn lot_size(&self) -> usize {
        self.lot
    }

    async fn check(
        &mut self,
        _ledger: &dyn Ledger,
        md: &MappedDocument,
        _rec: &Record,
    ) -> Result<Result<(), Vec<Problem>>, TargetError> {
        Ok(if self.hold.contains(&md.doc.number) {
            Err(vec![Problem::new("fake-hold", "number", "held", "fix it")])
        } else {
            Ok(())
        })
    }

    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, ())>,
        run_id: &str,
    ) -> Result<Lot<Vec<String>>, TargetError> {
        let numbers: Vec<String> = docs.iter().map(|(m, _, ())| m.doc.number.clone()).collect();
        Ok(Lot {
            label: format!("fake lot {run_id}"),
            key: Some(numbers.join("+")),
            values: vec![(
                format!("fake-lot\0{}", numbers.join("+")),
                serde_json::json!(numbers),
            )],
            payload: numbers,
            docs: docs
                .into_iter()
                .map(|(md, rec, ())| LotDoc {
                    md,
                    rec,
                    payload_hash: "h".into(),
                })
                .collect(),
        })
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<Vec<String>>,
    ) -> Result<Outcome, TargetError> {
        let numbers = &lot.payload;
        Ok(match self.script.pop_front().unwrap_or(Script::Take) {
            Script::Take => {
                self.take(numbers);
                Outcome::Delivered(receipt(&numbers[0]))
            }
            Script::Refuse => Outcome::Refused {
                error: "refused: bad VAT".into(),
                note: "refused by fake".into(),
            },
            Script::Down => Outcome::NotSent {
                error: "down".into(),
                note: "not sent: down".into(),
                stop: stop(),
            },
            Script::LostAnswer { taken } => {
                if taken {
                    self.take(numbers);
                }
                Outcome::Uncertain {
                    error: "no answer".into(),
                    stop: stop(),
                }
            }
            Script::Mixed => {
                self.take(&numbers[..1]);
                let mut items = vec![Some(Item::Delivered(receipt(&numbers[0])))];
                items.push(Some(Item::Refused {
                    error: "refused: bad account".into(),
                    note: "refused by fake".into(),
                }));
                items.extend(numbers.iter().skip(2).map(|_| None));
                Outcome::Partial(items)
            }
            Script::Die { taken } => {
                if taken {
                    self.take(numbers);
                }
                std::future::pending::<()>().await;
                unreachable!()
            }
        })
    }

    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        if self.lookup_down {
            return Err(stop());
        }
        let p = self.platform.lock().unwrap();
        Ok(p.held.get(&r.number).map(|id| Found {
            state: State::Accepted,
            receipt: Receipt {
                remote_id: Some(id.clone()),
                status: Some("FOUND".into()),
                key: None,
                note: "found: not sent again".into(),
            },
        }))
    }

    async fn settle(
        &mut self,
        _ledger: &dyn Ledger,
        _lot: &Lot<Vec<String>>,
        recs: &mut [Record],
    ) -> Result<(), TargetError> {
        if self.settle_down {
            return Err(stop());
        }
        for r in recs {
            r.remote_status = Some("SETTLED".into());
        }
        Ok(())
    }

    fn claimed_lots(&self, claimed: Vec<Record>) -> Vec<Vec<Record>> {
        let mut by_key: BTreeMap<Option<String>, Vec<Record>> = BTreeMap::new();
        for r in claimed {
            by_key.entry(r.idempotency_key.clone()).or_default().push(r);
        }
        by_key.into_values().collect()
    }

    async fn resend(
        &mut self,
        ledger: &dyn Ledger,
        claimed: &[Record],
    ) -> Result<Option<Resent>, TargetError> {
        if !self.idempotent {
            return Ok(None);
        }
        let key = claimed[0].idempotency_key.clone().unwrap_or_default();
        assert!(
            ledger.value(&format!("fake-lot\0{key}"))?.is_some(),
            "stored with the claim"
        );
        let numbers: Vec<String> = claimed.iter().map(|r| r.number.clone()).collect();
        self.take(&numbers);
        Ok(Some(Resent {
            outcome: Outcome::Partial(
                numbers
                    .iter()
                    .map(|n| Some(Item::Delivered(receipt(n))))
                    .collect(),
            ),
            notes: vec![format!("lot {key} sent again")],
        }))
    }

    fn waiting_note(&self) -> String {
        "not listed yet".into()
    }

    fn released_note(&self) -> String {
        "released for a new delivery".into()
    }

    async fn poll(
        &mut self,
        _ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        let now = Utc::now();
        let mut out = Polled::default();
        for mut r in live {
            r.remote_status = Some("PAID".into());
            r.transition(State::Paid, "paid", now);
            out.changes.push(format!("{} paid", r.number));
            out.changed.push(r);
        }
        Ok(out)
    }
}

struct World {
    ledger: MemLedger,
    platform: Arc<Mutex<Platform>>,
}

impl World {
    fn new() -> World {
        World {
            ledger: MemLedger::in_memory().unwrap(),
            platform: Arc::default(),
        }
    }

    fn fake(&self) -> Fake {
        Fake::new(&self.platform)
    }

    fn page(&self, numbers: &[&str]) -> Vec<Doc> {
        let m = crate::mapping::tests::mapping();
        numbers
            .iter()
            .map(|n| {
                let mut d = crate::mapping::tests::worked_invoice();
                d.id = format!("id-{n}");
                d.number = (*n).to_owned();
                let md = crate::checks::prepare(&d, &m).unwrap();
                let mut rec = Record::new(self.key(n), Utc::now());
                rec.number = (*n).to_owned();
                (Arc::new(md), rec)
            })
            .collect()
    }

    fn key(&self, n: &str) -> RecordKey {
        RecordKey {
            job: "job".into(),
            target: "fake".into(),
            doc_id: format!("id-{n}"),
        }
    }

    fn rec(&self, n: &str) -> Record {
        self.ledger.get(&self.key(n)).unwrap().unwrap()
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.platform.lock().unwrap().calls.clone()
    }

    /// Backdates the claim of a record, as if the run had died `minutes` ago.
    fn age(&self, n: &str, minutes: i64) {
        let mut r = self.rec(n);
        for e in &mut r.history {
            e.at -= chrono::Duration::minutes(minutes);
        }
        self.ledger.put_records(&[r]).unwrap();
    }
}

async fn deliver(
    w: &World,
    fake: Fake,
    numbers: &[&str],
) -> (Driven<Fake>, Result<(), TargetError>) {
    let mut d = Driven::new(fake, "job", false);
    let r = d
        .deliver_page(&w.ledger, w.page(numbers), Vec::new(), "run-1")
        .await;
    (d, r)
}

#[tokio::test]
async fn each_outcome_is_recorded_as_its_state() {
    let w = World::new();
    let mut fake = w.fake();
    fake.script = [Script::Take, Script::Refuse].into();
    let (d, r) = deliver(&w, fake, &["A", "B"]).await;
    r.unwrap();
    assert_eq!(d.delivered, 1);
    let a = w.rec("A");
    assert_eq!(a.state, State::Delivered);
    assert_eq!(a.remote_id.as_deref(), Some("R-A"));
    assert_eq!(a.remote_status.as_deref(), Some("SETTLED"));
    assert_eq!(
        a.idempotency_key.as_deref(),
        Some("A"),
        "the lot's key, kept"
    );
    assert_eq!(a.attempts, 1);
    assert_eq!(a.payload_hash.as_deref(), Some("h"));
    assert!(a
        .history
        .iter()
        .any(|e| e.note == "run run-1: claimed for fake lot run-1"));
    let b = w.rec("B");
    assert_eq!(b.state, State::Failed);
    assert_eq!(b.last_error.as_deref(), Some("refused: bad VAT"));

    // Not sent (the platform is down): released, and the target stops: nothing more is sent.
    let w = World::new();
    let mut fake = w.fake();
    fake.script = [Script::Down].into();
    let (d, r) = deliver(&w, fake, &["C", "D"]).await;
    assert!(matches!(r, Err(TargetError::Remote { .. })));
    assert_eq!(d.delivered, 0);
    assert_eq!(w.rec("C").state, State::Released);
    assert_eq!(w.rec("C").last_error.as_deref(), Some("down"));
    assert!(
        w.ledger.get(&w.key("D")).unwrap().is_none(),
        "never claimed"
    );

    // A lost answer: left claimed for the lookup; the target stops.
    let w = World::new();
    let mut fake = w.fake();
    fake.script = [Script::LostAnswer { taken: false }].into();
    let (_, r) = deliver(&w, fake, &["E"]).await;
    assert!(r.is_err());
    assert_eq!(w.rec("E").state, State::Claimed);
    assert_eq!(w.rec("E").last_error.as_deref(), Some("no answer"));
}

#[tokio::test]
async fn a_partial_answer_records_each_document_and_holds_go_with_the_first_claim() {
    let w = World::new();
    let mut fake = w.fake();
    fake.lot = 3;
    fake.hold = vec!["H".into()];
    fake.script = [Script::Mixed].into();
    let (d, r) = deliver(&w, fake, &["A", "H", "B", "C"]).await;
    r.unwrap();
    assert_eq!(d.delivered, 1);
    assert_eq!(
        w.calls(),
        vec![vec!["A".to_owned()]],
        "one call for the lot of three"
    );
    assert_eq!(w.rec("A").state, State::Delivered);
    assert_eq!(w.rec("B").state, State::Failed);
    assert_eq!(
        w.rec("C").state,
        State::Claimed,
        "no answer: looked up later"
    );
    let h = w.rec("H");
    assert_eq!(h.state, State::Held);
    assert_eq!(h.problems[0].code, "fake-hold");
    assert_eq!(w.rec("A").idempotency_key.as_deref(), Some("A+B+C"));
}

#[tokio::test]
async fn lots_take_ready_documents_up_to_their_size() {
    let w = World::new();
    let mut fake = w.fake();
    fake.lot = 2;
    fake.hold = vec!["B".into()];
    let (d, r) = deliver(&w, fake, &["A", "B", "C", "D", "E"]).await;
    r.unwrap();
    assert_eq!(d.delivered, 4);
    let calls: Vec<String> = w.calls().iter().map(|c| c.join("+")).collect();
    assert_eq!(calls, ["A+C", "D+E"]);
}

/// Runs a delivery that dies inside the call, as a SIGKILL would.
async fn die(w: &World, numbers: &[&str], taken: bool) {
    let mut fake = w.fake();
    fake.script = [Script::Die { taken }].into();
    let mut d = Driven::new(fake, "job", false);
    let page = w.page(numbers);
    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        d.deliver_page(&w.ledger, page, Vec::new(), "run-1"),
    )
    .await;
    assert!(cut.is_err(), "the call never returns");
}

#[tokio::test]
async fn a_crash_after_the_platform_took_it_is_found_and_never_sent_twice() {
    let w = World::new();
    die(&w, &["A"], true).await;
    assert_eq!(w.rec("A").state, State::Claimed, "flushed before the call");
    let mut d = Driven::new(w.fake(), "job", false);
    let notes = d.reconcile(&w.ledger).await.unwrap();
    assert_eq!(notes, ["A (fake): found: not sent again"]);
    let a = w.rec("A");
    assert_eq!(a.state, State::Accepted, "the state its status means");
    assert_eq!(a.remote_id.as_deref(), Some("R-A"));
    assert_eq!(a.last_error, None);
    assert_eq!(w.calls().len(), 1);
    assert_eq!(d.delivered(), 0, "not delivered by this run");
}

#[tokio::test]
async fn a_crash_before_the_platform_took_it_waits_out_the_grace_then_is_released() {
    let w = World::new();
    die(&w, &["A"], false).await;
    let mut d = Driven::new(w.fake(), "job", false);
    // Within the grace period: a late answer may still land, so nothing moves.
    let notes = d.reconcile(&w.ledger).await.unwrap();
    assert_eq!(
        notes,
        [format!(
            "A (fake): {}: not listed yet",
            crate::targets::WAITING
        )]
    );
    assert_eq!(w.rec("A").state, State::Claimed);
    // After it: released for a new delivery, then sent once.
    w.age("A", 61);
    let notes = d.reconcile(&w.ledger).await.unwrap();
    assert_eq!(notes, ["A (fake): released for a new delivery"]);
    assert_eq!(w.rec("A").state, State::Released);
    let cursor = w.ledger.cursor("job").unwrap().unwrap();
    assert!(
        cursor.rescan,
        "the source is read again, so that it is delivered"
    );
    let page = vec![(w.page(&["A"]).remove(0).0, w.rec("A"))];
    d.deliver_page(&w.ledger, page, Vec::new(), "run-2")
        .await
        .unwrap();
    assert_eq!(w.rec("A").state, State::Delivered);
    assert_eq!(w.rec("A").attempts, 2);
    assert_eq!(w.calls().len(), 1, "sent once in all");
}

#[tokio::test]
async fn an_idempotent_target_sends_the_same_lot_again_after_the_grace() {
    let w = World::new();
    {
        let mut fake = w.fake();
        fake.lot = 2;
        fake.script = [Script::Die { taken: false }].into();
        let mut d = Driven::new(fake, "job", false);
        let page = w.page(&["A", "B"]);
        let cut = tokio::time::timeout(
            Duration::from_millis(50),
            d.deliver_page(&w.ledger, page, Vec::new(), "run-1"),
        )
        .await;
        assert!(cut.is_err());
    }
    // The platform took A alone meanwhile (a late answer): not all found, past the grace.
    w.platform
        .lock()
        .unwrap()
        .held
        .insert("A".into(), "R-A".into());
    w.age("A", 61);
    w.age("B", 61);
    let mut fake = w.fake();
    fake.idempotent = true;
    let mut d = Driven::new(fake, "job", false);
    let notes = d.reconcile(&w.ledger).await.unwrap();
    assert_eq!(notes, ["lot A+B sent again"]);
    assert_eq!(w.rec("A").state, State::Delivered);
    assert_eq!(w.rec("B").state, State::Delivered);
    assert_eq!(w.rec("B").remote_id.as_deref(), Some("R-B"));
    assert_eq!(w.platform.lock().unwrap().held.len(), 2, "nothing twice");
}

#[tokio::test]
async fn a_lookup_that_fails_leaves_the_records_claimed() {
    let w = World::new();
    die(&w, &["A"], true).await;
    let mut fake = w.fake();
    fake.lookup_down = true;
    let mut d = Driven::new(fake, "job", false);
    assert!(d.reconcile(&w.ledger).await.is_err());
    assert_eq!(w.rec("A").state, State::Claimed);
}

#[tokio::test]
async fn a_dry_run_calls_nothing_and_poll_follows_what_was_delivered() {
    let w = World::new();
    let mut d = Driven::new(w.fake(), "job", true);
    d.deliver_page(&w.ledger, w.page(&["A"]), Vec::new(), "run-1")
        .await
        .unwrap();
    assert_eq!(d.delivered(), 1);
    assert!(w.calls().is_empty());
    assert!(w.ledger.get(&w.key("A")).unwrap().is_none());
    assert!(d.poll(&w.ledger).await.unwrap().is_empty());

    let (mut d, r) = deliver(&w, w.fake(), &["B"]).await;
    r.unwrap();
    assert_eq!(d.poll(&w.ledger).await.unwrap(), ["B paid"]);
    assert_eq!(w.rec("B").state, State::Paid);
}

#[tokio::test]
async fn a_delivered_record_is_never_claimed_again() {
    let w = World::new();
    let (_, r) = deliver(&w, w.fake(), &["A"]).await;
    r.unwrap();
    let page = vec![(w.page(&["A"]).remove(0).0, w.rec("A"))];
    let mut d = Driven::new(w.fake(), "job", false);
    let err = d
        .deliver_page(&w.ledger, page, Vec::new(), "run-2")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is delivered in the ledger; it cannot become claimed"),
        "{err}"
    );
    assert_eq!(w.calls().len(), 1, "sent once");
    assert_eq!(w.rec("A").state, State::Delivered);
}

#[tokio::test]
async fn the_answer_is_recorded_before_the_work_after_it() {
    let w = World::new();
    let (_, r) = deliver(&w, w.fake(), &["A"]).await;
    r.unwrap();
    assert_eq!(w.rec("A").remote_status.as_deref(), Some("SETTLED"));

    // The work after the answer fails (Xero's allocation, out of daily calls): the document the
    // platform took is recorded delivered all the same, never left claimed.
    let w = World::new();
    let mut fake = w.fake();
    fake.settle_down = true;
    let (d, r) = deliver(&w, fake, &["B"]).await;
    assert!(r.is_err());
    assert_eq!(d.delivered(), 1);
    let b = w.rec("B");
    assert_eq!(b.state, State::Delivered);
    assert_eq!(b.remote_status.as_deref(), Some("TAKEN"));
}

/// Another worker claimed B while this one packed A+B: nothing of the lot is sent, and A waits,
/// held with its copy, for the next run (never lost behind a cursor that moved on).
#[tokio::test]
async fn a_lot_another_worker_claimed_part_of_is_not_sent_and_the_rest_waits() {
    let w = World::new();
    let mut fake = w.fake();
    fake.lot = 2;
    let page = w.page(&["A", "B"]);
    let mut theirs = page[1].1.clone();
    theirs.claim("run-other: claimed", Utc::now()).unwrap();
    w.ledger.put_records(&[theirs]).unwrap();
    let mut d = Driven::new(fake, "job", false);
    d.deliver_page(&w.ledger, page, Vec::new(), "run-1")
        .await
        .unwrap();
    assert!(w.calls().is_empty(), "nothing sent");
    assert_eq!(d.delivered, 0);
    assert_eq!(w.rec("B").state, State::Claimed, "theirs, untouched");
    let mut a = w.rec("A");
    assert_eq!(a.state, State::Held);
    assert_eq!(a.problems[0].code, "claimed-elsewhere");
    assert_eq!(a.take_held_doc().map(|d| d.number), Some("A".to_owned()));
    // The next run delivers it.
    let (d, r) = deliver(&w, w.fake(), &["A"]).await;
    r.unwrap();
    assert_eq!((d.delivered, w.rec("A").state), (1, State::Delivered));
}

/// Two workers share the ledger; the other one reserved B and claimed it. This one packs A+C
/// (B put off, not sent with A), then waits for B, finds it claimed and leaves it: one call,
/// nothing held, every reservation let go. Without turns, the lot A+B was refused at its claim
/// and A held for the next run.
#[tokio::test]
async fn workers_take_turns_a_document_another_reserved_is_put_off_not_packed() {
    use crate::ledger::store::MemStore;
    let store = MemStore::default();
    let mut w = World::new();
    w.ledger = crate::ledger::StoreLedger::on(store.as_worker("me")).unwrap();
    let theirs = crate::ledger::StoreLedger::on(store.as_worker("other")).unwrap();
    let mut fake = w.fake();
    fake.lot = 2;
    let page = w.page(&["A", "B", "C"]);
    let b = super::turns::name(&page[1].1.key);
    assert!(theirs.try_lock_name(&b).unwrap());
    let mut claimed = page[1].1.clone();
    claimed.claim("run-other: claimed", Utc::now()).unwrap();
    theirs.put_records(&[claimed]).unwrap();
    let mut d = Driven::new(fake, "job", false);
    let (r, ()) = tokio::join!(
        d.deliver_page(&w.ledger, page, Vec::new(), "run-1"),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            theirs.unlock_name(&b);
        }
    );
    r.unwrap();
    assert_eq!(w.calls(), vec![vec!["A".to_owned(), "C".to_owned()]]);
    assert_eq!(d.delivered, 2);
    assert_eq!(w.rec("A").state, State::Delivered);
    assert_eq!(w.rec("B").state, State::Claimed, "theirs, untouched");
    assert_eq!(w.rec("C").state, State::Delivered);
    assert!(store.names_held().is_empty(), "{:?}", store.names_held());
}

/// The other worker reserved B and never lets go of it (nor claims it): after the wait, B is
/// held with its copy for the next run, never lost behind the cursor; A and C go.
#[tokio::test]
async fn a_document_another_worker_keeps_reserved_waits_for_the_next_run() {
    use crate::ledger::store::MemStore;
    let store = MemStore::default();
    let mut w = World::new();
    w.ledger = crate::ledger::StoreLedger::on(store.as_worker("me")).unwrap();
    let theirs = crate::ledger::StoreLedger::on(store.as_worker("other")).unwrap();
    let page = w.page(&["A", "B", "C"]);
    assert!(theirs
        .try_lock_name(&super::turns::name(&page[1].1.key))
        .unwrap());
    let mut d = Driven::new(w.fake(), "job", false);
    d.deliver_page(&w.ledger, page, Vec::new(), "run-1")
        .await
        .unwrap();
    assert_eq!(w.calls(), vec![vec!["A".to_owned()], vec!["C".to_owned()]]);
    let mut b = w.rec("B");
    assert_eq!(b.state, State::Held);
    assert_eq!(b.problems[0].code, "claimed-elsewhere");
    assert_eq!(b.take_held_doc().map(|d| d.number), Some("B".to_owned()));
    assert_eq!(store.names_held().len(), 1, "only theirs is left");
}

/// One worker at a time follows a target's statuses: while another worker does, this one's
/// poll asks the target nothing and writes nothing; once it is done, this one follows.
#[tokio::test]
async fn a_target_another_worker_is_polling_is_left_to_it() {
    use crate::ledger::store::MemStore;
    let store = MemStore::default();
    let mut w = World::new();
    w.ledger = crate::ledger::StoreLedger::on(store.as_worker("me")).unwrap();
    let theirs = crate::ledger::StoreLedger::on(store.as_worker("other")).unwrap();
    let (mut d, r) = deliver(&w, w.fake(), &["B"]).await;
    r.unwrap();
    assert!(theirs.try_lock_name("poll/job/fake").unwrap());
    assert!(d.poll(&w.ledger).await.unwrap().is_empty());
    assert_eq!(
        w.rec("B").state,
        State::Delivered,
        "left to the other worker"
    );
    theirs.unlock_name("poll/job/fake");
    assert_eq!(d.poll(&w.ledger).await.unwrap(), ["B paid"]);
    assert_eq!(w.rec("B").state, State::Paid);
    assert!(store.names_held().is_empty(), "{:?}", store.names_held());
}
