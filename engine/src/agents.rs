//! Customer-side agents (SPEC §1 Agents): the table of heartbeats.
//!
//! An agent (a customer's client program) sends a heartbeat every 30 s with
//! its version and two monotonic counters. Each agent is owned by one shard,
//! chosen by a hash of its key (`group_code/agent_id`, so two customers may
//! use the same agent id); the owner keeps the last two heartbeats, from
//! which the rates are derived. Any shard lists the agents by asking every
//! owner over the mesh.
//!
//! NOTE: the table lives in memory only. After a restart it is empty and
//! every agent reappears with its next heartbeat (its rates one heartbeat
//! later); nothing about an agent is worth a WAL record.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;

use crate::mesh::call::{ask, ask_all};
use crate::mesh::msg::{AdminMsg, MeshMsg};
use crate::mesh::owner;
use crate::shard::Shard;

/// Most agents one shard tracks: a bound on memory should a customer invent
/// agent ids; further new agents are refused until the server restarts.
pub const MAX_AGENTS_PER_SHARD: usize = 10_000;

/// One heartbeat, as received (crosses cores inside a `MeshMsg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The agent's own id.
    pub agent_id: String,
    /// Its customer.
    pub group_code: String,
    /// The client whose token it used.
    pub client_id: String,
    /// Its version string.
    pub version: String,
    /// Messages it has sent since it started (monotonic).
    pub sent: u64,
    /// Reports it has received since it started (monotonic).
    pub reports_received: u64,
    /// Receive time, unix ms.
    pub at_ms: i64,
}

/// An agent as the operator sees it (crosses cores in a reply).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// The last heartbeat.
    pub last: Heartbeat,
    /// Messages sent per minute between the last two heartbeats (0 after
    /// the first heartbeat or when the counter went back, i.e. a restart).
    pub sent_per_min: f64,
    /// Reports received per minute, likewise.
    pub reports_per_min: f64,
}

/// A request to the shard that owns an agent (or, for `List`, to every shard).
pub enum AgentMsg {
    /// Record a heartbeat; the reply says whether it was taken (false: the
    /// owner's table is full).
    Heartbeat {
        /// The heartbeat.
        heartbeat: Heartbeat,
        /// Taken or not.
        reply: oneshot::Sender<bool>,
    },
    /// The agents this shard owns.
    List {
        /// Them.
        reply: oneshot::Sender<Vec<AgentView>>,
    },
}

/// The agents one shard owns, by key. Shard-local (lives in [`Shard`]).
#[derive(Default)]
pub struct LocalAgents {
    agents: RefCell<HashMap<String, AgentState>>,
}

struct AgentState {
    last: Heartbeat,
    previous: Option<Heartbeat>,
}

impl LocalAgents {
    /// Records a heartbeat; false when the agent is new and the table full.
    pub fn record(&self, heartbeat: Heartbeat) -> bool {
        let mut agents = self.agents.borrow_mut();
        let key = key(&heartbeat.group_code, &heartbeat.agent_id);
        if let Some(state) = agents.get_mut(&key) {
            let previous = std::mem::replace(&mut state.last, heartbeat);
            state.previous = Some(previous);
            return true;
        }
        if agents.len() >= MAX_AGENTS_PER_SHARD {
            return false;
        }
        agents.insert(
            key,
            AgentState {
                last: heartbeat,
                previous: None,
            },
        );
        true
    }

    /// Every agent of this shard with its rates.
    pub fn views(&self) -> Vec<AgentView> {
        self.agents
            .borrow()
            .values()
            .map(|s| {
                let (sent_per_min, reports_per_min) = match &s.previous {
                    Some(p) => (
                        per_min(p.sent, s.last.sent, p.at_ms, s.last.at_ms),
                        per_min(
                            p.reports_received,
                            s.last.reports_received,
                            p.at_ms,
                            s.last.at_ms,
                        ),
                    ),
                    None => (0.0, 0.0),
                };
                AgentView {
                    last: s.last.clone(),
                    sent_per_min,
                    reports_per_min,
                }
            })
            .collect()
    }
}

fn key(group_code: &str, agent_id: &str) -> String {
    format!("{group_code}/{agent_id}")
}

/// The rate per minute of a counter between two readings.
fn per_min(before: u64, after: u64, before_ms: i64, after_ms: i64) -> f64 {
    let elapsed_ms = after_ms - before_ms;
    if elapsed_ms <= 0 || after < before {
        return 0.0;
    }
    (after - before) as f64 * 60_000.0 / elapsed_ms as f64
}

/// Handles an [`AgentMsg`] on the shard it was sent to.
pub fn handle(shard: &Shard, msg: AgentMsg) {
    match msg {
        AgentMsg::Heartbeat { heartbeat, reply } => {
            let _ = reply.send(shard.agents.record(heartbeat));
        }
        AgentMsg::List { reply } => {
            let _ = reply.send(shard.agents.views());
        }
    }
}

/// Records a heartbeat at the agent's owning shard; false when refused.
pub async fn heartbeat(shard: &Rc<Shard>, heartbeat: Heartbeat) -> bool {
    let to = owner::agent(&heartbeat.group_code, &heartbeat.agent_id, shard.shards());
    ask(shard, to, |reply| {
        MeshMsg::Admin(AdminMsg::Agent(AgentMsg::Heartbeat { heartbeat, reply }))
    })
    .await
    .unwrap_or(false)
}

/// Every agent of every shard, by customer then agent id.
pub async fn list(shard: &Rc<Shard>) -> Vec<AgentView> {
    let mut all: Vec<AgentView> = ask_all(shard, |reply| {
        MeshMsg::Admin(AdminMsg::Agent(AgentMsg::List { reply }))
    })
    .await
    .into_iter()
    .flatten()
    .flatten()
    .collect();
    all.sort_by(|a, b| {
        (&a.last.group_code, &a.last.agent_id).cmp(&(&b.last.group_code, &b.last.agent_id))
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(id: &str, sent: u64, reports: u64, at_ms: i64) -> Heartbeat {
        Heartbeat {
            agent_id: id.into(),
            group_code: "G".into(),
            client_id: "c".into(),
            version: "1.0".into(),
            sent,
            reports_received: reports,
            at_ms,
        }
    }

    #[test]
    fn rates_come_from_the_last_two_heartbeats() {
        let agents = LocalAgents::default();
        assert!(agents.record(hb("a", 100, 10, 0)));
        assert_eq!(agents.views()[0].sent_per_min, 0.0);
        assert!(agents.record(hb("a", 160, 40, 30_000)));
        let v = &agents.views()[0];
        assert_eq!((v.sent_per_min, v.reports_per_min), (120.0, 60.0));
        assert_eq!(v.last.sent, 160);
    }

    #[test]
    fn a_restarted_agent_has_no_negative_rate() {
        let agents = LocalAgents::default();
        agents.record(hb("a", 100, 10, 0));
        agents.record(hb("a", 5, 1, 30_000));
        assert_eq!(agents.views()[0].sent_per_min, 0.0);
    }

    #[test]
    fn same_agent_id_of_two_customers_are_two_agents() {
        let agents = LocalAgents::default();
        agents.record(hb("a", 1, 1, 0));
        let mut other = hb("a", 1, 1, 0);
        other.group_code = "H".into();
        agents.record(other);
        assert_eq!(agents.views().len(), 2);
    }
}
