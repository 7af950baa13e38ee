//! `mcmp serve --demo` (SPEC §2.1): registers a demo customer that can send
//! end to end through in-process `sim` senders, and prints how to use it.
//!
//! The rows are written to the catalog store before the engine starts (so
//! the first snapshot has them) and every write is a put of the same row, so
//! running `--demo` again changes nothing. The demo client is reused when
//! one exists: a second run prints the same credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mcmp_engine::catalog::{
    self, table, BillCode, CatalogError, ChannelService, Client, Customer, Services,
};
use mcmp_engine::model::Channel;
use mcmp_engine::routing::rule::{GroupRatio, RouteRule};
use mcmp_engine::secrets::{HmacKey, SecretHash};
use mcmp_engine::sender::SenderConfig;
use mcmp_storage::Catalog;
use serde_json::json;

use crate::time::now_ms;
use crate::{auth, ServeError};

/// The demo customer's group code.
pub const DEMO_GROUP: &str = "DEMO";
/// Its bill code.
pub const DEMO_BILL_CODE: &str = "DEMO";
/// Its registered caller ID.
pub const DEMO_CALLER_ID: &str = "0212345678";
/// The sender group of the demo's `sim` senders.
pub const DEMO_SENDER_GROUP: &str = "DEMO_SIM";
/// The demo's `sim` senders, one per carrier.
pub const DEMO_SENDERS: [&str; 3] = ["DEMO_S_SKT01", "DEMO_S_KT01", "DEMO_S_LGT01"];
/// The channels the demo customer may use.
pub const DEMO_CHANNELS: [Channel; 4] = [Channel::Sms, Channel::Lms, Channel::Kko, Channel::Rcs];

/// Random bytes of a demo client secret (as for clients the admin creates).
const SECRET_BYTES: usize = 24;

/// The demo client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoClient {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

/// Registers (idempotently) the demo customer, its services, bill code,
/// caller ID, client, `sim` senders and routes. Blocking: call before the
/// engine starts.
pub fn register(store: &dyn Catalog) -> Result<DemoClient, ServeError> {
    let customer = Customer {
        group_code: DEMO_GROUP.into(),
        name: "Demo".into(),
        vas: false,
        prepaid: false,
        balance: 0,
        charges_offset: 0,
    };
    catalog::put(store, table::CUSTOMERS, DEMO_GROUP, &customer)?;
    let services = Services {
        channels: DEMO_CHANNELS
            .iter()
            .map(|c| {
                (
                    *c,
                    ChannelService {
                        enabled: true,
                        ..ChannelService::default()
                    },
                )
            })
            .collect(),
    };
    catalog::put(store, table::SERVICES, DEMO_GROUP, &services)?;
    let bill = BillCode {
        bill_code: DEMO_BILL_CODE.into(),
        ad: false,
        class: mcmp_engine::model::Class::default(),
    };
    let bill_key = format!("{DEMO_GROUP}/{DEMO_BILL_CODE}");
    catalog::put(store, table::BILL_CODES, &bill_key, &bill)?;
    let caller_key = format!("{DEMO_GROUP}/{DEMO_CALLER_ID}");
    catalog::put(store, table::CALLER_IDS, &caller_key, &())?;
    register_senders_and_routes(store)?;
    let client = demo_client(store)?;
    tracing::info!(client_id = %client.client_id, "demo customer {DEMO_GROUP} registered");
    Ok(client)
}

fn register_senders_and_routes(store: &dyn Catalog) -> Result<(), ServeError> {
    for name in DEMO_SENDERS {
        let config = json!({
            "name": name,
            "group": DEMO_SENDER_GROUP,
            "channels": DEMO_CHANNELS,
            "carriers": ["*"],
            "transport": {"type": "sim"},
            "remark": "mcmp serve --demo",
        });
        let config: SenderConfig = serde_json::from_value(config).map_err(|e| {
            ServeError::Catalog(CatalogError::BadRow {
                table: table::SENDERS,
                key: name.into(),
                reason: e.to_string(),
            })
        })?;
        catalog::put(store, table::SENDERS, name, &config)?;
    }
    for channel in DEMO_CHANNELS {
        let ratio = GroupRatio {
            sender_group: DEMO_SENDER_GROUP.into(),
            ratio: 1,
        };
        let rule = RouteRule {
            route_id: RouteRule::id(DEMO_GROUP, channel),
            group_code: DEMO_GROUP.into(),
            channel,
            carriers: BTreeMap::from([("*".to_string(), vec![ratio])]),
            remark: Some("mcmp serve --demo".into()),
        };
        catalog::put(
            store,
            table::ROUTES,
            &format!("{DEMO_GROUP}/{channel}"),
            &rule,
        )?;
    }
    Ok(())
}

/// The oldest client of the demo customer, else a new one, with a fresh
/// secret: only its hash is kept, so each `--demo` start prints a new one.
fn demo_client(store: &dyn Catalog) -> Result<DemoClient, ServeError> {
    let existing = catalog::scan_prefix::<Client>(store, table::CLIENTS, "")?
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.group_code == DEMO_GROUP)
        .min_by_key(|c| c.created_at_ms);
    let secret = auth::random_token(SECRET_BYTES)?;
    let client = match existing {
        Some(old) => Client {
            secret_hash: SecretHash::of(&secret),
            secret_key: HmacKey::new(secret.as_bytes()),
            ..old
        },
        None => {
            let id = format!("c_{}", auth::random_token(12)?);
            Client::new(id, DEMO_GROUP.into(), &secret, now_ms())
        }
    };
    catalog::put(store, table::CLIENTS, &client.client_id, &client)?;
    Ok(DemoClient {
        client_id: client.client_id,
        client_secret: secret,
    })
}

/// The text printed (stdout) once the server is ready: the credentials and
/// a `curl` pipeline that sends one SMS end to end and reads it back.
/// `run_id` makes the `src_msg_id` unique per run (so a rerun is not a
/// duplicate).
pub fn banner(client: &DemoClient, addr: SocketAddr, run_id: i64) -> String {
    let url = format!("http://{addr}");
    let src = format!("demo-{run_id}");
    let (id, secret) = (&client.client_id, &client.client_secret);
    let token = format!(
        "TOKEN=$(curl -s -u {id}:{secret} -d grant_type=client_credentials {url}/oauth/token \
         | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
    );
    let message = json!({
        "src_msg_id": src, "channel": "SMS", "bill_code": DEMO_BILL_CODE,
        "from": DEMO_CALLER_ID, "to": "01012345678", "text": "hello from MCMP",
    });
    format!(
        "\nMCMP demo: customer {DEMO_GROUP}, sim senders {senders}\n\
         client_id: {id}\n\
         client_secret: {secret}\n\
         \n\
         # send one SMS end to end:\n\
         {token}; curl -s -H \"Authorization: Bearer $TOKEN\" -d '{message}' {url}/v1/messages\n\
         \n\
         # read it back (status \"delivered\" after a few milliseconds):\n\
         curl -s -H \"Authorization: Bearer $TOKEN\" '{url}/v1/messages?src_msg_id={src}'\n",
        senders = DEMO_SENDERS.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_has_credentials_address_and_a_unique_message() {
        let client = DemoClient {
            client_id: "c_id".into(),
            client_secret: "s3cret".into(),
        };
        let addr: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        let text = banner(&client, addr, 42);
        assert!(text.contains("client_id: c_id\n"), "{text}");
        assert!(text.contains("client_secret: s3cret\n"), "{text}");
        assert!(text.contains("curl -s -u c_id:s3cret -d grant_type=client_credentials http://127.0.0.1:4321/oauth/token"), "{text}");
        assert!(text.contains(r#""src_msg_id":"demo-42""#), "{text}");
        assert!(
            text.contains("http://127.0.0.1:4321/v1/messages?src_msg_id=demo-42"),
            "{text}"
        );
        assert_ne!(text, banner(&client, addr, 43));
    }
}
