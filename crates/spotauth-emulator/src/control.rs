//! The control API (`/__control/...`, JSON in and out) and the operations behind it, which the
//! [`crate::EmulatorHandle`] calls directly on the same state.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{AppMode, ConfigError, RefreshMode, TestUser};
use crate::connect::PlayerSnapshot;
use crate::faults::Fault;
use crate::state::{Counters, LoginChoice, Shared};

impl Shared {
    pub(crate) fn add_user(&self, user: TestUser) {
        self.lock().users.insert(user.id.clone(), user);
    }

    pub(crate) fn users(&self) -> Vec<TestUser> {
        self.lock().users.values().cloned().collect()
    }

    pub(crate) fn push_next_login(&self, choice: LoginChoice) -> Result<(), ConfigError> {
        let mut st = self.lock();
        if !st.users.contains_key(&choice.user_id) {
            return Err(ConfigError::UnknownUser(choice.user_id));
        }
        st.next_logins.push_back(choice);
        Ok(())
    }

    pub(crate) fn clear_next_logins(&self) {
        self.lock().next_logins.clear();
    }

    pub(crate) fn set_app_mode(&self, mode: AppMode) -> Result<(), ConfigError> {
        mode.validate()?;
        self.lock().config.app_mode = mode;
        Ok(())
    }

    pub(crate) fn set_refresh_mode(&self, mode: RefreshMode) {
        self.lock().config.refresh_mode = mode;
    }

    pub(crate) fn set_user_refresh_mode(&self, user_id: &str, mode: Option<RefreshMode>) -> Result<(), ConfigError> {
        let mut st = self.lock();
        if !st.users.contains_key(user_id) {
            return Err(ConfigError::UnknownUser(user_id.to_owned()));
        }
        match mode {
            Some(m) => st.user_refresh_mode.insert(user_id.to_owned(), m),
            None => st.user_refresh_mode.remove(user_id),
        };
        Ok(())
    }

    pub(crate) fn inject_fault(&self, fault: Fault) -> Result<(), String> {
        fault.validate()?;
        self.lock().faults.push(fault);
        Ok(())
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn revoke(&self, user_id: &str) -> usize {
        self.lock().revoke_user(user_id)
    }

    pub(crate) fn expire_access(&self, user_id: &str) -> usize {
        self.lock().expire_access_tokens(user_id)
    }

    pub(crate) fn player(&self) -> PlayerSnapshot {
        let mut st = self.lock();
        let (connect, _) = st.connect_now();
        connect.snapshot()
    }

    pub(crate) fn open_player(&self, access_token: &str, name: &str) -> Result<String, String> {
        // The same admission and registration as the SDK's `POST /sdk/v1/devices`.
        let refused = |resp: HttpResponse| format!("refused with {}", resp.status());
        let caller = crate::web_api::caller_of(self, access_token).map_err(refused)?;
        crate::player::sdk_checks(&caller).map_err(refused)?;
        crate::player::register(self, &caller, name, 1.0).map_err(refused)
    }

    pub(crate) fn drop_device(&self, device_id: &str) -> bool {
        let mut st = self.lock();
        let (connect, now) = st.connect_now();
        connect.remove_device(device_id, now)
    }

    pub(crate) fn advance(&self, by: Duration) -> u64 {
        let mut st = self.lock();
        st.advance_clock(by);
        st.clock_offset
    }

    pub(crate) fn clock(&self) -> ClockInfo {
        let st = self.lock();
        ClockInfo { offset_seconds: st.clock_offset, now: st.now() }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub(crate) fn reset_counters(&self) {
        let mut st = self.lock();
        st.counters = Counters::default();
        st.reuses.clear();
    }

    pub(crate) fn reset(&self) {
        self.lock().reset();
    }
}

/// The emulator clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// Seconds added to the real clock.
    pub offset_seconds: u64,
    /// Emulator time, Unix seconds.
    pub now: u64,
}

fn bad_request(msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": msg.to_string() }))
}

fn result(r: Result<(), impl std::fmt::Display>) -> HttpResponse {
    match r {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
struct ModeBody {
    mode: Option<RefreshMode>,
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: u64,
}

async fn add_user(s: web::Data<Shared>, body: web::Json<TestUser>) -> HttpResponse {
    s.add_user(body.into_inner());
    HttpResponse::NoContent().finish()
}

async fn list_users(s: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(s.users())
}

async fn next_login(s: web::Data<Shared>, body: web::Json<LoginChoice>) -> HttpResponse {
    result(s.push_next_login(body.into_inner()))
}

async fn clear_next_login(s: web::Data<Shared>) -> HttpResponse {
    s.clear_next_logins();
    HttpResponse::NoContent().finish()
}

async fn app_mode(s: web::Data<Shared>, body: web::Json<AppMode>) -> HttpResponse {
    result(s.set_app_mode(body.into_inner()))
}

async fn refresh_mode(s: web::Data<Shared>, body: web::Json<ModeBody>) -> HttpResponse {
    match body.into_inner().mode {
        Some(mode) => {
            s.set_refresh_mode(mode);
            HttpResponse::NoContent().finish()
        }
        None => bad_request("`mode` is required"),
    }
}

async fn user_refresh_mode(s: web::Data<Shared>, path: web::Path<String>, body: web::Json<ModeBody>) -> HttpResponse {
    result(s.set_user_refresh_mode(&path, body.into_inner().mode))
}

async fn inject_fault(s: web::Data<Shared>, body: web::Json<Fault>) -> HttpResponse {
    result(s.inject_fault(body.into_inner()))
}

async fn clear_faults(s: web::Data<Shared>) -> HttpResponse {
    s.clear_faults();
    HttpResponse::NoContent().finish()
}

async fn revoke(s: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "revoked": s.revoke(&path) }))
}

async fn expire(s: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "expired": s.expire_access(&path) }))
}

async fn player(s: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(s.player())
}

async fn drop_device(s: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    if s.drop_device(&path) { HttpResponse::NoContent().finish() } else { bad_request("no such device") }
}

async fn advance(s: web::Data<Shared>, body: web::Json<AdvanceBody>) -> HttpResponse {
    let offset = s.advance(Duration::from_secs(body.seconds));
    HttpResponse::Ok().json(json!({ "offset_seconds": offset }))
}

async fn clock(s: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(s.clock())
}

async fn counters(s: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(s.counters())
}

async fn reset_counters(s: web::Data<Shared>) -> HttpResponse {
    s.reset_counters();
    HttpResponse::NoContent().finish()
}

async fn reset(s: web::Data<Shared>) -> HttpResponse {
    s.reset();
    HttpResponse::NoContent().finish()
}

/// Registers the `/__control` routes.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/__control")
            .app_data(web::JsonConfig::default().error_handler(|err, _| {
                let resp = bad_request(&err);
                actix_web::error::InternalError::from_response(err, resp).into()
            }))
            .route("/users", web::post().to(add_user))
            .route("/users", web::get().to(list_users))
            .route("/users/{id}/refresh_mode", web::put().to(user_refresh_mode))
            .route("/users/{id}/revoke", web::post().to(revoke))
            .route("/users/{id}/expire_access_tokens", web::post().to(expire))
            .route("/next_login", web::post().to(next_login))
            .route("/next_login", web::delete().to(clear_next_login))
            .route("/app_mode", web::put().to(app_mode))
            .route("/refresh_mode", web::put().to(refresh_mode))
            .route("/faults", web::post().to(inject_fault))
            .route("/faults", web::delete().to(clear_faults))
            .route("/player", web::get().to(player))
            .route("/devices/{id}/drop", web::post().to(drop_device))
            .route("/clock", web::get().to(clock))
            .route("/clock/advance", web::post().to(advance))
            .route("/counters", web::get().to(counters))
            .route("/counters", web::delete().to(reset_counters))
            .route("/reset", web::post().to(reset)),
    );
}
