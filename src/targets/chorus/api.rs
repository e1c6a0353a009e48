//! The Chorus Pro API through PISTE: OAuth2 client credentials (the shared
//! [`ClientCredentials`] cache, renewed four minutes before expiry), the `cpro-account` header of
//! the technical account, and the calls facto makes. Reads are retried (429, 5xx, no answer);
//! the deposit is sent once, retried only when it was certainly not processed. Secrets stay in
//! `secrecy` types and never reach an error message or a log.

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::config::ChorusConfig;
use crate::retry::{self, HttpFailure, OnceFailure, RetryPolicy};
use crate::targets::http::{self, ApiError};
use crate::targets::oauth::{Attempt, ClientCredentials, ClientCredentialsSettings, OAuthError};
use crate::targets::secret_from_env;

/// Renew the token this long before it expires (what the OCA client does).
const TOKEN_MARGIN: Duration = Duration::from_secs(240);

/// Errors of the Chorus Pro API.
#[derive(Debug, thiserror::Error)]
pub enum ChorusError {
    /// What any API can give: a secret missing, credentials refused, no answer, a deposit not
    /// processed or maybe processed ([`ApiError::Unknown`]: look it up before any new attempt),
    /// an answer not as documented.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Chorus Pro answered with a functional error (`codeRetour` not 0).
    #[error("Chorus Pro refused: {libelle} (code {code})")]
    Refused {
        /// `codeRetour`.
        code: i64,
        /// `libelle`.
        libelle: String,
    },
}

impl From<HttpFailure> for ChorusError {
    fn from(e: HttpFailure) -> Self {
        ChorusError::Api(e.into())
    }
}

/// A change certainly not processed.
fn not_sent(detail: impl std::fmt::Display) -> ChorusError {
    ApiError::NotSent(format!("not processed by Chorus Pro: {detail}")).into()
}

/// A change that may have been processed.
fn unknown(detail: impl std::fmt::Display) -> ChorusError {
    ApiError::Unknown(format!(
        "outcome unknown (it may have been processed): {detail}"
    ))
    .into()
}

/// `deposer/flux` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    /// Flow number.
    pub numero_flux_depot: String,
    /// Deposit date.
    #[serde(default)]
    pub date_depot: Option<String>,
}

/// One invoice-level error of a flow report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DpError {
    /// Invoice number.
    #[serde(default, rename = "numeroDP")]
    pub numero_dp: Option<String>,
    /// Why it was rejected.
    #[serde(default, rename = "libelleErreurDP")]
    pub libelle_erreur_dp: Option<String>,
}

/// One technical error of a flow report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TechError {
    /// Code.
    #[serde(default)]
    pub code_erreur: Option<String>,
    /// Text.
    #[serde(default)]
    pub libelle_erreur: Option<String>,
}

/// `consulterCRDetaille` answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowReport {
    /// Current state of the flow (`IN_INTEGRE`, `IN_REJETE`, ...).
    #[serde(default)]
    pub etat_courant_depot_flux: Option<String>,
    /// Technical errors.
    #[serde(default)]
    pub liste_erreur_technique: Vec<TechError>,
    /// Invoice-level errors.
    #[serde(default, rename = "listeErreurDP")]
    pub liste_erreur_dp: Vec<DpError>,
}

/// One invoice of `rechercher/fournisseur`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// Chorus Pro's invoice id.
    #[serde(rename = "identifiantFactureCPP")]
    pub identifiant_facture_cpp: i64,
    /// Invoice number.
    pub numero_facture: String,
    /// Current status.
    #[serde(default)]
    pub statut: Option<String>,
    /// Flow it came in.
    #[serde(default)]
    pub numero_flux_depot: Option<String>,
}

/// The invoice status an answer gives (`statutFacture`), if it gives one.
fn new_status(v: &Value) -> Option<String> {
    v.get("statutFacture")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The corrected routing of an invoice to recycle.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// The buyer's SIRET.
    pub buyer_siret: String,
    /// The buyer's service code, if any.
    pub service: Option<String>,
    /// The commitment (engagement) number, if any.
    pub commitment: Option<String>,
    /// Why.
    pub comment: String,
}

/// What `consulter/historique` says of one invoice.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// `statutCourantCode`.
    pub status: String,
    /// Comment of the latest status (a rejection reason).
    pub comment: Option<String>,
}

/// Settings of a buyer's structure (`structures/v1/consulter`).
pub use crate::einvoice::rules::StructureRules;

/// A client of one Chorus Pro account.
pub struct ChorusApi {
    http: reqwest::Client,
    base: String,
    token: ClientCredentials,
    account: SecretString,
    policy: RetryPolicy,
}

impl From<OAuthError> for ChorusError {
    fn from(e: OAuthError) -> Self {
        ApiError::from_oauth(e, None).into()
    }
}

impl ChorusApi {
    /// A client for a `chorus-pro` connector, with its secrets read from the environment.
    ///
    /// # Errors
    ///
    /// A secret is missing, or the HTTP client cannot be built.
    pub fn new(cfg: &ChorusConfig) -> Result<Self, ChorusError> {
        let client_id =
            secret_from_env(&cfg.client_id_env, "PISTE client id").map_err(ApiError::Config)?;
        let client_secret = secret_from_env(&cfg.client_secret_env, "PISTE client secret")
            .map_err(ApiError::Config)?;
        let account = secret_from_env(
            &cfg.cpro_account_env,
            "Chorus Pro technical account, login:password",
        )
        .map_err(ApiError::Config)?;
        if !account.expose_secret().contains(':') {
            return Err(ApiError::Config(format!(
                "{} must hold the technical account as login:password",
                cfg.cpro_account_env
            ))
            .into());
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(account.expose_secret());
        let http = http::client(cfg.timeout_secs)?;
        let token = ClientCredentials::new(
            http.clone(),
            ClientCredentialsSettings {
                provider: "PISTE".into(),
                token_url: cfg.token_url(),
                client_id: client_id.expose_secret().to_owned(),
                client_secret,
                scope: Some("openid".into()),
                margin: TOKEN_MARGIN,
            },
        );
        Ok(ChorusApi {
            http,
            base: cfg.api_url().trim_end_matches('/').to_owned(),
            token,
            account: SecretString::from(encoded),
            policy: http::policy(cfg.max_retry_secs),
        })
    }

    fn request(&self, path: &str, token: &SecretString, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token.expose_secret())
            .header("cpro-account", self.account.expose_secret())
            .header("Content-Type", "application/json;charset=utf-8")
            .json(body)
    }

    fn auth_refused(status: u16) -> ChorusError {
        ChorusError::Api(ApiError::Auth(if status == 403 {
            "Chorus Pro answered 403: the PISTE application is not subscribed to the Chorus Pro APIs of this environment, or their terms were not accepted".to_owned()
        } else {
            "Chorus Pro refused the credentials (401): check the technical account (cpro-account) and its password expiry".to_owned()
        }))
    }

    fn parse<T: DeserializeOwned>(path: &str, v: Value) -> Result<T, ChorusError> {
        let code = v.get("codeRetour").and_then(Value::as_i64).unwrap_or(0);
        if code != 0 {
            return Err(ChorusError::Refused {
                code,
                libelle: v
                    .get("libelle")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        serde_json::from_value(v).map_err(|e| ApiError::protocol(path, e).into())
    }

    /// The functional error of a 400 answer.
    fn refusal(path: &str, body: &str) -> ChorusError {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        match v.get("codeRetour").and_then(Value::as_i64) {
            Some(code) if code != 0 => ChorusError::Refused {
                code,
                libelle: v
                    .get("libelle")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            },
            _ => ApiError::protocol(path, format!("HTTP 400: {body}")).into(),
        }
    }

    /// A call that changes nothing: retried; a 401 renews the token once.
    async fn read<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, ChorusError> {
        let url = format!("{}{path}", self.base);
        let (url, body) = (&url, &body);
        self.token
            .authorized(|token| async move {
                let sent = retry::send(self.policy, url, || self.request(path, &token, body)).await;
                Attempt::Done(match sent {
                    Ok(resp) => match resp.json().await {
                        Ok(v) => Self::parse(path, v),
                        Err(e) => Err(ApiError::protocol(path, e).into()),
                    },
                    Err(HttpFailure::Refused { status: 401, .. }) => {
                        return Attempt::TokenRefused(Self::auth_refused(401))
                    }
                    Err(HttpFailure::Refused { status: 403, .. }) => Err(Self::auth_refused(403)),
                    Err(HttpFailure::Refused {
                        status: 400, body, ..
                    }) => Err(Self::refusal(path, &body)),
                    Err(e) => Err(e.into()),
                })
            })
            .await
    }

    /// Deposits one flow (`deposer/flux`). Sent once: see [`ApiError::Unknown`].
    ///
    /// # Errors
    ///
    /// `NotSent` (safe to try again), `Unknown` (look up first), `Refused`, `Auth`.
    pub async fn deposit(
        &self,
        file: &[u8],
        name: &str,
        syntax: &str,
    ) -> Result<Deposit, ChorusError> {
        let body = json!({
            "fichierFlux": base64::engine::general_purpose::STANDARD.encode(file),
            "nomFichier": name,
            "syntaxeFlux": syntax,
            "avecSignature": false,
        });
        self.write_once("/cpro/factures/v1/deposer/flux", &body)
            .await
    }

    /// A call that changes something at Chorus Pro: sent once, never retried after it may have
    /// been processed (a 401 before processing renews the token once).
    async fn write_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ChorusError> {
        let url = format!("{}{path}", self.base);
        let url = &url;
        self.token
            .authorized(|token| async move {
                let sent =
                    retry::send_once(self.policy, url, || self.request(path, &token, body)).await;
                Attempt::Done(match sent {
                    Ok(resp) => match resp.json().await {
                        Ok(v) => Self::parse(path, v),
                        Err(e) => Err(unknown(format!("unreadable answer: {e}"))),
                    },
                    Err(OnceFailure::Refused(HttpFailure::Refused { status: 401, .. })) => {
                        return Attempt::TokenRefused(Self::auth_refused(401))
                    }
                    Err(OnceFailure::Refused(HttpFailure::Refused { status: 403, .. })) => {
                        Err(Self::auth_refused(403))
                    }
                    Err(OnceFailure::Refused(HttpFailure::Refused { status, body, .. })) => {
                        Err(match Self::refusal(path, &body) {
                            e @ ChorusError::Refused { .. } => e,
                            _ => ChorusError::Refused {
                                code: i64::from(status),
                                libelle: body,
                            },
                        })
                    }
                    Err(OnceFailure::Refused(e) | OnceFailure::NotSent(e)) => Err(not_sent(e)),
                    Err(OnceFailure::Unknown { detail, .. }) => Err(unknown(detail)),
                })
            })
            .await
    }

    /// Uploads a file for a later action (`transverses/v1/ajouter/fichier`, at most 10 MB);
    /// returns its id. Repeating it only leaves an unused file, so it is retried.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure, or Chorus Pro's refusal.
    pub async fn upload(&self, bytes: &[u8], name: &str) -> Result<i64, ChorusError> {
        #[derive(Deserialize)]
        struct Uploaded {
            #[serde(rename = "pieceJointeIdFichier")]
            id: i64,
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let mime = match ext.to_ascii_lowercase().as_str() {
            "pdf" => "application/pdf",
            "xml" => "application/xml",
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "zip" => "application/zip",
            "txt" | "csv" => "text/plain",
            _ => "application/octet-stream",
        };
        let u: Uploaded = self
            .read(
                "/cpro/transverses/v1/ajouter/fichier",
                json!({
                    "pieceJointeFichier": base64::engine::general_purpose::STANDARD.encode(bytes),
                    "pieceJointeNom": name,
                    "pieceJointeTypeMime": mime,
                    "pieceJointeExtension": ext.to_ascii_uppercase(),
                }),
            )
            .await?;
        Ok(u.id)
    }

    /// Completes a suspended invoice (`factures/v1/completer`): a comment and uploaded files.
    /// Sent once; returns the new status when the answer gives it.
    ///
    /// # Errors
    ///
    /// `Unknown` when the answer was lost (look at the invoice's status before trying again),
    /// `Refused` with Chorus Pro's reason, network or credentials failure.
    pub async fn complete(
        &self,
        id: i64,
        comment: &str,
        files: &[(i64, String)],
    ) -> Result<Option<String>, ChorusError> {
        let attachments: Vec<Value> = files
            .iter()
            .map(|(fid, name)| {
                json!({
                    "pieceJointeComplementaireId": fid,
                    "pieceJointeComplementaireDesignation": name,
                    "pieceJointeComplementaireType": "DOCUMENT",
                })
            })
            .collect();
        let v: Value = self
            .write_once(
                "/cpro/factures/v1/completer",
                &json!({
                    "identifiantFactureCPP": id,
                    "commentaire": comment,
                    "pieceJointeComplementaire": attachments,
                }),
            )
            .await?;
        Ok(new_status(&v))
    }

    /// Corrects the routing of an invoice to recycle (`factures/v1/recycler`): the buyer's SIRET,
    /// its service code and the commitment number. Sent once; returns the new status when given.
    ///
    /// # Errors
    ///
    /// As for [`ChorusApi::complete`].
    pub async fn recycle(&self, id: i64, routing: &Routing) -> Result<Option<String>, ChorusError> {
        let mut reference = serde_json::Map::new();
        if let Some(ej) = &routing.commitment {
            reference.insert("numeroBonCommande".into(), json!(ej));
        }
        let mut buyer = serde_json::Map::new();
        buyer.insert("codeDestinataire".into(), json!(routing.buyer_siret));
        if let Some(service) = &routing.service {
            buyer.insert("codeServiceExecutant".into(), json!(service));
        }
        let v: Value = self
            .write_once(
                "/cpro/factures/v1/recycler",
                &json!({
                    "identifiantFactureCPP": id,
                    "commentaire": routing.comment,
                    "destinataire": buyer,
                    "reference": reference,
                }),
            )
            .await?;
        Ok(new_status(&v))
    }

    /// The processing report of a flow (`consulterCRDetaille`).
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn flow_report(&self, flow: &str) -> Result<FlowReport, ChorusError> {
        self.read(
            "/cpro/transverses/v1/consulterCRDetaille",
            json!({"numeroFluxDepot": flow}),
        )
        .await
    }

    /// Invoices found as supplier, every page (the default page holds 10).
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn search(&self, criteria: Value) -> Result<Vec<Found>, ChorusError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            liste_factures: Vec<Found>,
            #[serde(default)]
            parametres_retour: Option<PageInfo>,
        }
        #[derive(Deserialize)]
        struct PageInfo {
            #[serde(default)]
            pages: Option<u64>,
        }
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let mut body = criteria.clone();
            body["rechercheFactureParFournisseur"] =
                json!({"nbResultatsParPage": 100, "pageResultatDemandee": page});
            let p: Page = self
                .read("/cpro/factures/v1/rechercher/fournisseur", body)
                .await?;
            out.extend(p.liste_factures);
            let pages = p.parametres_retour.and_then(|i| i.pages).unwrap_or(1);
            if page >= pages || page >= 1000 {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// The status of one invoice (`consulter/historique`).
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn history(&self, id: i64) -> Result<History, ChorusError> {
        let v: Value = self
            .read(
                "/cpro/factures/v1/consulter/historique",
                json!({"idFacture": id}),
            )
            .await?;
        let status = v
            .get("statutCourantCode")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::protocol("consulter/historique", "no statutCourantCode"))?
            .to_owned();
        let comment = v
            .pointer("/historiquesDesStatuts/histoStatut")
            .and_then(Value::as_array)
            .and_then(|a| a.last())
            .and_then(|h| h.get("histoStatutCommentaire"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(History { status, comment })
    }

    /// A buyer's structure settings from its SIRET; `None` when Chorus Pro does not know it.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn structure(&self, siret: &str) -> Result<Option<StructureRules>, ChorusError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Found {
            #[serde(rename = "idStructureCPP")]
            id_structure_cpp: i64,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Search {
            #[serde(default)]
            liste_structures: Vec<Found>,
        }
        let s: Search = self
            .read(
                "/cpro/structures/v1/rechercher",
                json!({"structure": {"identifiantStructure": siret, "typeIdentifiantStructure": "SIRET"}}),
            )
            .await?;
        let Some(first) = s.liste_structures.first() else {
            return Ok(None);
        };
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Params {
            code_service_doit_etre_renseigne: bool,
            #[serde(rename = "numeroEJDoitEtreRenseigne")]
            numero_ej_doit_etre_renseigne: bool,
            #[serde(rename = "gestionNumeroEJOuCodeService")]
            gestion_numero_ej_ou_code_service: bool,
        }
        #[derive(Deserialize)]
        struct Consult {
            #[serde(default)]
            parametres: Params,
        }
        let c: Consult = self
            .read(
                "/cpro/structures/v1/consulter",
                json!({"idStructureCPP": first.id_structure_cpp, "codeLangue": "fr"}),
            )
            .await?;
        Ok(Some(StructureRules {
            service_code_required: c.parametres.code_service_doit_etre_renseigne,
            engagement_required: c.parametres.numero_ej_doit_etre_renseigne,
            engagement_or_service: c.parametres.gestion_numero_ej_ou_code_service,
        }))
    }
}

/// A cached structure reading, as kept in the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedStructure {
    /// When it was read.
    pub read_at: chrono::DateTime<chrono::Utc>,
    /// `None`: Chorus Pro does not know this SIRET.
    pub rules: Option<StructureRules>,
}

impl crate::targets::http::CallError for ChorusError {
    fn api(&self) -> Option<&ApiError> {
        match self {
            ChorusError::Api(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_of_a_deposit_not_made_or_maybe_made_are_chorus_pros() {
        assert_eq!(
            not_sent("HTTP 503").to_string(),
            "not processed by Chorus Pro: HTTP 503"
        );
        let e = unknown("HTTP 500");
        assert!(matches!(e, ChorusError::Api(ApiError::Unknown(_))));
        assert_eq!(
            e.to_string(),
            "outcome unknown (it may have been processed): HTTP 500"
        );
    }
}
