//! The frame of every simulator: a wiremock server on 127.0.0.1 whose every request is answered
//! from one shared state, which the tests read and change between runs.

use std::sync::{Arc, Mutex};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How a simulator's state answers a request.
pub trait Answer: Send + 'static {
    /// The answer to `req` (the state may change).
    fn answer(&mut self, req: &Request) -> ResponseTemplate;
}

/// A running simulator.
pub struct Sim<S> {
    pub server: MockServer,
    pub state: Arc<Mutex<S>>,
}

impl<S: Answer> Sim<S> {
    /// Starts a server answering every request from `state`.
    pub async fn serve(state: S) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(state));
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        Sim { server, state }
    }
}

struct Responder<S>(Arc<Mutex<S>>);

impl<S: Answer> Respond for Responder<S> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().answer(req)
    }
}
