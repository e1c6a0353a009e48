//! An in-repo Chorus Pro simulator on 127.0.0.1 (a wiremock server with one stateful
//! responder): PISTE OAuth2 tokens that expire, the `cpro-account` header, `deposer/flux` that
//! reads the deposited file (one XML or a zip lot) and rejects one it cannot read, flow reports
//! and invoice statuses that advance as they are polled, paged searches (at most 10 results per
//! page, whatever is asked, so that paging is exercised), structures, and faults on demand: 429,
//! an answer lost after processing, an answer too slow. It counts deposits per invoice number so
//! that tests prove "deposited exactly once".

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::{Request, ResponseTemplate};

use crate::common::oauth::FakeOAuth;
use crate::common::sim::Answer;

pub const CLIENT_ID: &str = "facto-test-client";
pub const CLIENT_SECRET: &str = "s3cret-piste";
pub const ACCOUNT: &str = "TECH_1_facto@cpro.fr:pa55word";

/// What the next deposit does.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer 429 with Retry-After: 1, without processing.
    TooMany,
    /// Process the flow, then answer 500 (the answer is lost).
    LoseAnswer,
    /// Process the flow, then answer after this long (longer than the client waits).
    Slow(Duration),
    /// Accept the flow, whose processing then fails (`IN_REJETE`, as for an unreadable file).
    Corrupt,
}

#[derive(Debug, Clone)]
struct Invoice {
    id: i64,
    number: String,
    flow: String,
    status: usize,
    /// A status waiting for the supplier (`SUSPENDUE`, `A_RECYCLER`), until answered.
    waiting: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
struct Flow {
    numbers: Vec<String>,
    rejected: Option<String>,
    polls: u32,
}

#[derive(Default)]
pub struct State {
    /// PISTE: client-credentials tokens that expire.
    pub oauth: FakeOAuth,
    next_flow: u64,
    next_invoice: i64,
    flows: BTreeMap<String, Flow>,
    invoices: Vec<Invoice>,
    pub deposits: BTreeMap<String, u32>,
    pub faults: VecDeque<Fault>,
    /// Invoice numbers the buyer rejects (status REJETEE after MISE_A_DISPOSITION).
    pub buyer_rejects: Vec<String>,
    /// Invoice numbers the buyer suspends (SUSPENDUE after MISE_A_DISPOSITION) until completed.
    pub suspends: Vec<String>,
    /// Invoice numbers the buyer sends back for routing (A_RECYCLER) until recycled.
    pub recycles: Vec<String>,
    /// Files uploaded (`ajouter/fichier`): id → (name, bytes).
    pub files: BTreeMap<i64, (String, Vec<u8>)>,
    /// Answers received (`completer`, `recycler`): invoice number → request body.
    pub answers: Vec<(String, Value)>,
    /// The next answer is processed, then its response lost (500).
    pub lose_next_answer: bool,
    /// SIRET → (idStructureCPP, service code required, engagement required).
    pub structures: BTreeMap<String, (i64, bool, bool)>,
    pub calls: Vec<String>,
}

const PATH: [&str; 4] = [
    "DEPOSEE",
    "MISE_A_DISPOSITION",
    "MANDATEE",
    "MISE_EN_PAIEMENT",
];

/// The running simulator.
pub type Sim = crate::common::sim::Sim<State>;

/// The helpers of the answers.
struct Responder;

fn ok(v: Value) -> ResponseTemplate {
    let mut v = v;
    v["codeRetour"] = json!(0);
    v["libelle"] = json!("TRA_MSG_00.000");
    ResponseTemplate::new(200).set_body_json(v)
}

fn number_of(xml: &str) -> Option<String> {
    let (open, close) = if xml.contains("CrossIndustryInvoice") {
        let start = xml.find("<rsm:ExchangedDocument>")?;
        return xml[start..]
            .split_once("<ram:ID>")
            .and_then(|(_, rest)| rest.split_once("</ram:ID>"))
            .map(|(n, _)| n.to_owned());
    } else {
        ("<cbc:ID>", "</cbc:ID>")
    };
    xml.split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map(|(n, _)| n.to_owned())
}

impl Responder {
    fn authorised(s: &mut State, req: &Request) -> bool {
        let bearer = s.oauth.authorised(req);
        let account = base64::engine::general_purpose::STANDARD.encode(ACCOUNT);
        let cpro = req
            .headers
            .get("cpro-account")
            .and_then(|v| v.to_str().ok())
            == Some(account.as_str());
        bearer && cpro
    }

    fn deposit(&self, s: &mut State, body: &Value) -> ResponseTemplate {
        let fault = s.faults.pop_front();
        if let Some(Fault::TooMany) = fault {
            return ResponseTemplate::new(429).insert_header("Retry-After", "1");
        }
        let file = base64::engine::general_purpose::STANDARD
            .decode(body["fichierFlux"].as_str().unwrap_or(""))
            .unwrap_or_default();
        let name = body["nomFichier"].as_str().unwrap_or("");
        let syntax = body["syntaxeFlux"].as_str().unwrap_or("");
        let docs: Vec<Vec<u8>> = if name.ends_with(".zip") {
            facto::format::zip::read(&file)
                .map(|d| d.into_iter().map(|(_, b)| b).collect())
                .unwrap_or_default()
        } else {
            vec![file]
        };
        s.next_flow += 1;
        let flow_no = format!("FLUX{:06}", s.next_flow);
        let mut flow = Flow::default();
        for d in &docs {
            let xml = String::from_utf8_lossy(d);
            let root_ok = match syntax {
                "IN_DP_E1_CII_16B" => xml.contains("<rsm:CrossIndustryInvoice"),
                "IN_DP_E1_UBL_INVOICE" => xml.contains("<Invoice") || xml.contains("<CreditNote"),
                _ => false,
            };
            match number_of(&xml) {
                Some(n) if root_ok => {
                    *s.deposits.entry(n.clone()).or_insert(0) += 1;
                    flow.numbers.push(n);
                }
                _ => flow.rejected = Some(format!("fichier illisible pour la syntaxe {syntax}")),
            }
        }
        if docs.is_empty() {
            flow.rejected = Some("flux vide".into());
        }
        if let Some(Fault::Corrupt) = fault {
            flow.rejected =
                Some("Le fichier ne respecte pas le format attendu pour la syntaxe".into());
        }
        if flow.rejected.is_none() {
            for n in &flow.numbers {
                s.next_invoice += 1;
                s.invoices.push(Invoice {
                    id: 1000 + s.next_invoice,
                    number: n.clone(),
                    flow: flow_no.clone(),
                    waiting: None,
                    status: 0,
                });
            }
        }
        s.flows.insert(flow_no.clone(), flow);
        let answer = ok(
            json!({"numeroFluxDepot": flow_no, "dateDepot": "2026-11-24", "syntaxeFlux": syntax}),
        );
        match fault {
            Some(Fault::LoseAnswer) => ResponseTemplate::new(500),
            Some(Fault::Slow(d)) => answer.set_delay(d),
            _ => answer,
        }
    }

    fn report(s: &mut State, body: &Value) -> ResponseTemplate {
        let no = body["numeroFluxDepot"].as_str().unwrap_or("");
        let Some(flow) = s.flows.get_mut(no) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"codeRetour": 1, "libelle": "flux inconnu"}));
        };
        flow.polls += 1;
        if let Some(why) = &flow.rejected {
            return ok(json!({"etatCourantDepotFlux": "IN_REJETE",
                "listeErreurTechnique": [{"codeErreur": "REJ_SEMAN", "libelleErreur": why}], "listeErreurDP": []}));
        }
        let etat = if flow.polls == 1 {
            "IN_EN_COURS_TRAITEMENT_CPP"
        } else {
            "IN_INTEGRE"
        };
        ok(json!({"etatCourantDepotFlux": etat, "listeErreurTechnique": [], "listeErreurDP": []}))
    }

    fn search(s: &State, body: &Value) -> ResponseTemplate {
        let by_flow = body["numeroFluxDepot"].as_str();
        let by_number = body["numeroFacture"].as_str();
        let found: Vec<Value> = s
            .invoices
            .iter()
            .filter(|i| by_flow.is_none_or(|f| i.flow == f))
            .filter(|i| by_number.is_none_or(|n| i.number == n))
            .map(|i| json!({"identifiantFactureCPP": i.id, "numeroFacture": i.number,
                "statut": PATH.get(i.status).copied().unwrap_or("REJETEE"), "numeroFluxDepot": i.flow}))
            .collect();
        // At most 10 per page, whatever is asked: the client must page.
        let per_page = 10usize;
        let page = body["rechercheFactureParFournisseur"]["pageResultatDemandee"]
            .as_u64()
            .unwrap_or(1)
            .max(1) as usize;
        let pages = found.len().div_ceil(per_page).max(1);
        let slice: Vec<Value> = found
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        ok(json!({"listeFactures": slice,
            "parametresRetour": {"nbResultatsParPage": per_page, "pageCourante": page, "pages": pages, "total": found.len()}}))
    }

    fn history(s: &mut State, body: &Value) -> ResponseTemplate {
        let id = body["idFacture"].as_i64().unwrap_or(0);
        let rejects = s.buyer_rejects.clone();
        let Some(inv) = s.invoices.iter_mut().find(|i| i.id == id) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"codeRetour": 1, "libelle": "facture inconnue"}));
        };
        // Each look advances the invoice one step along its path, unless it waits for the
        // supplier; on reaching the buyer it may be suspended or sent back for recycling.
        if inv.waiting.is_none() {
            if inv.status < PATH.len() - 1 && inv.status != usize::MAX {
                inv.status += 1;
            }
            if inv.status == 1 {
                if s.suspends.contains(&inv.number) {
                    s.suspends.retain(|n| *n != inv.number);
                    inv.waiting = Some("SUSPENDUE");
                } else if s.recycles.contains(&inv.number) {
                    s.recycles.retain(|n| *n != inv.number);
                    inv.waiting = Some("A_RECYCLER");
                }
            }
        }
        if let Some(w) = inv.waiting {
            return ok(
                json!({"idFacture": id, "numeroFacture": inv.number, "statutCourantCode": w,
                "historiquesDesStatuts": {"histoStatut": [{"histoStatutCode": w,
                "histoStatutCommentaire": "Bon de livraison signé manquant"}]}}),
            );
        }
        let rejected = rejects.contains(&inv.number) && inv.status >= 2;
        if rejected {
            inv.status = usize::MAX;
        }
        let (code, comment) = if rejected {
            ("REJETEE", "Numéro d'engagement inconnu du service")
        } else {
            (PATH[inv.status], "")
        };
        ok(
            json!({"idFacture": id, "numeroFacture": inv.number, "statutCourantCode": code,
            "historiquesDesStatuts": {"histoStatut": [{"histoStatutCode": code, "histoStatutCommentaire": comment}]}}),
        )
    }
}

impl Responder {
    /// `completer` (a SUSPENDUE invoice, with files already uploaded) or `recycler` (an
    /// A_RECYCLER one, with a buyer); the invoice then goes on along its path.
    fn answer(s: &mut State, path: &str, body: Value) -> ResponseTemplate {
        let refuse = |code: i64, why: &str| {
            ResponseTemplate::new(400).set_body_json(json!({"codeRetour": code, "libelle": why}))
        };
        let id = body["identifiantFactureCPP"].as_i64().unwrap_or(0);
        let completing = path.ends_with("completer");
        let files_known = body["pieceJointeComplementaire"]
            .as_array()
            .map(|a| {
                a.iter().all(|f| {
                    f["pieceJointeComplementaireId"]
                        .as_i64()
                        .is_some_and(|i| s.files.contains_key(&i))
                })
            })
            .unwrap_or(true);
        let Some(inv) = s.invoices.iter_mut().find(|i| i.id == id) else {
            return refuse(20001, "facture inconnue");
        };
        let expected = if completing {
            "SUSPENDUE"
        } else {
            "A_RECYCLER"
        };
        if inv.waiting != Some(expected) {
            return refuse(20002, "le statut de la facture ne permet pas cette action");
        }
        if completing && !files_known {
            return refuse(20003, "pièce jointe inconnue");
        }
        if !completing
            && body["destinataire"]["codeDestinataire"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        {
            return refuse(20004, "destinataire obligatoire");
        }
        inv.waiting = None;
        let number = inv.number.clone();
        s.answers.push((number.clone(), body));
        if std::mem::take(&mut s.lose_next_answer) {
            return ResponseTemplate::new(500);
        }
        let status = if completing {
            "COMPLETEE"
        } else {
            "MISE_A_DISPOSITION"
        };
        ok(json!({"identifiantFactureCPP": id, "numeroFacture": number,
            "statutFacture": status, "libelle": "traitement effectué"}))
    }
}

impl Answer for State {
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let s = self;
        let path = req.url.path().to_owned();
        s.calls.push(path.clone());
        if path == "/api/oauth/token" {
            return s.oauth.token(req);
        }
        if !Responder::authorised(s, req) {
            return ResponseTemplate::new(401);
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match path.as_str() {
            "/cpro/factures/v1/deposer/flux" => Responder.deposit(s, &body),
            "/cpro/transverses/v1/consulterCRDetaille" => Responder::report(s, &body),
            "/cpro/factures/v1/rechercher/fournisseur" => Responder::search(s, &body),
            "/cpro/factures/v1/consulter/historique" => Responder::history(s, &body),
            "/cpro/transverses/v1/ajouter/fichier" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(body["pieceJointeFichier"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                let id = 7000 + s.files.len() as i64;
                let name = body["pieceJointeNom"].as_str().unwrap_or("").to_owned();
                s.files.insert(id, (name, bytes));
                ok(json!({"pieceJointeIdFichier": id}))
            }
            "/cpro/factures/v1/completer" | "/cpro/factures/v1/recycler" => {
                Responder::answer(s, &path, body)
            }
            "/cpro/structures/v1/rechercher" => {
                let siret = body["structure"]["identifiantStructure"]
                    .as_str()
                    .unwrap_or("");
                let list: Vec<Value> = s
                    .structures
                    .get(siret)
                    .map(|(id, _, _)| json!({"idStructureCPP": id, "identifiantStructure": siret}))
                    .into_iter()
                    .collect();
                ok(json!({"listeStructures": list, "parametresRetour": {"total": list.len()}}))
            }
            "/cpro/structures/v1/consulter" => {
                let id = body["idStructureCPP"].as_i64().unwrap_or(0);
                match s.structures.values().find(|(i, _, _)| *i == id) {
                    Some((_, svc, ej)) => ok(json!({"parametres": {
                        "codeServiceDoitEtreRenseigne": svc, "numeroEJDoitEtreRenseigne": ej,
                        "gestionNumeroEJOuCodeService": false}})),
                    None => ResponseTemplate::new(400)
                        .set_body_json(json!({"codeRetour": 1, "libelle": "structure inconnue"})),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl Sim {
    /// Starts a simulator that knows the demo's two public buyers (no structure requirement).
    pub async fn start() -> Sim {
        let mut st = State {
            oauth: FakeOAuth::client_credentials(CLIENT_ID, CLIENT_SECRET),
            ..State::default()
        };
        st.structures
            .insert("21690123100011".into(), (501, false, false));
        st.structures
            .insert("19690123400015".into(), (502, false, false));
        Sim::serve(st).await
    }

    /// The connector file of a `chorus-pro` target talking to this simulator.
    pub fn connector(&self, extra: &str) -> String {
        format!(
            "kind = \"chorus-pro\"\napi_url = \"{0}\"\ntoken_url = \"{0}/api/oauth/token\"\nclient_id_env = \"PISTE_CLIENT_ID\"\nclient_secret_env = \"PISTE_CLIENT_SECRET\"\ncpro_account_env = \"CHORUS_PRO_ACCOUNT\"\nmax_retry_secs = 5\n{extra}",
            self.server.uri()
        )
    }

    pub fn deposits(&self) -> BTreeMap<String, u32> {
        self.state.lock().unwrap().deposits.clone()
    }

    pub fn calls(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.as_str() == path)
            .count()
    }
}
