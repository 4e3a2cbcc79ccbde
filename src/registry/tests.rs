//! The registry's lookups against a scan of every agent, and its replays.

use std::sync::OnceLock;

use actix::{Context, Handler};

use super::*;
use crate::delivery::{test_link, Address, Link, Routes};
use crate::ids::ProcessId;
use crate::names::Audience;

/// A binding of `name` seen at `location`: a local one has an inbox of its own, remote ones
/// share one link (the registry reads only the location, never the route).
fn binding_of(agent: AgentId, name: &ServiceName, location: Location) -> Binding {
    static LINK: OnceLock<Link> = OnceLock::new();
    let address = match location {
        Location::Local => Address::Local(Inbox::new(16)),
        Location::Remote => Address::Remote(
            LINK.get_or_init(|| test_link(&Routes::new(), "", false))
                .clone(),
        ),
    };
    Binding::new(
        name.clone(),
        agent,
        Audience::Everyone,
        ProcessId::random(),
        address,
    )
}

/// What `Lookup::Name` answered before the index: a scan of every known agent.
fn linear(registry: &Registry, name: &ServiceName) -> Vec<Binding> {
    registry.sorted(
        registry
            .agents
            .values()
            .filter(|e| e.announced && e.binding.name() == name)
            .collect(),
    )
}

/// What a lookup answer says about each service: identity, name and location, in order.
fn described(bindings: &[Binding]) -> Vec<(AgentId, String, Location)> {
    bindings
        .iter()
        .map(|b| (b.agent(), b.name().to_string(), b.location()))
        .collect()
}

/// The index, rebuilt from `agents`, must be exactly the one kept (no empty entries).
fn check_index(registry: &Registry) {
    let mut expected: HashMap<ServiceName, Vec<(u64, AgentId)>> = HashMap::new();
    for entry in registry.agents.values() {
        if entry.announced {
            expected
                .entry(entry.binding.name().clone())
                .or_default()
                .push((entry.seq, entry.binding.agent()));
        }
    }
    for agents in expected.values_mut() {
        agents.sort();
    }
    let kept: HashMap<ServiceName, Vec<(u64, AgentId)>> = registry
        .by_name
        .0
        .keys()
        .map(|name| {
            let agents = registry.by_name.get(name);
            let listed = agents.map(|a| (registry.agents.get(&a).map_or(0, |e| e.seq), a));
            (name.clone(), listed.collect())
        })
        .collect();
    // One agent is kept as `One`, never as a list of one.
    assert!(registry
        .by_name
        .0
        .values()
        .all(|n| !matches!(n, Named::Many(list) if list.len() < 2)));
    assert_eq!(kept, expected);
}

fn lookup(registry: &mut Registry, name: &ServiceName) -> Vec<Binding> {
    registry
        .handle(Lookup::Name(name.clone()), &mut Context::new())
        .0
}

/// Every name of `names` looked up through the index answers exactly what the scan did.
fn check_lookups(registry: &mut Registry, names: &[ServiceName]) -> usize {
    check_index(registry);
    let mut found = 0;
    for name in names {
        let by_index = lookup(registry, name);
        assert_eq!(
            described(&by_index),
            described(&linear(registry, name)),
            "lookup of {name:?}"
        );
        found += by_index.len();
    }
    found
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn lookups_by_name_answer_what_a_scan_of_every_agent_answers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let hot: Vec<ServiceName> = (0..8)
        .map(|i| ServiceName::new(format!("hot-{i}")).unwrap())
        .collect();
    let group = GroupName::new("g").unwrap();
    let mut registry = Registry::new();
    let mut known: Vec<(AgentId, ServiceName)> = Vec::new();
    let mut names: Vec<ServiceName> = hot.clone();
    names.push(ServiceName::anonymous());
    names.push(ServiceName::new("nobody").unwrap());
    let register =
        |registry: &mut Registry, agent: AgentId, name: &ServiceName, location: Location| {
            let groups = if agent.as_uuid().as_bytes()[0].is_multiple_of(2) {
                vec![group.clone()]
            } else {
                Vec::new()
            };
            registry.handle(
                Register {
                    binding: binding_of(agent, name, location),
                    groups,
                },
                &mut Context::new(),
            );
        };
    let location = |rng: &mut Rng| {
        if rng.below(3) == 0 {
            Location::Local
        } else {
            Location::Remote
        }
    };

    // 20,000 services: most with a name of their own, one in ten sharing one of a few
    // names, one in fifty anonymous; local and remote interleaved.
    for i in 0..20_000 {
        let name = match rng.below(50) {
            0 => ServiceName::anonymous(),
            1..=5 => hot[rng.below(hot.len())].clone(),
            _ => {
                let unique = ServiceName::new(format!("svc-{i}")).unwrap();
                if i % 97 == 0 {
                    names.push(unique.clone());
                }
                unique
            }
        };
        let agent = AgentId::random();
        register(&mut registry, agent, &name, location(&mut rng));
        known.push((agent, name));
    }
    let found = check_lookups(&mut registry, &names);
    assert!(
        found > 1_000,
        "the hot names are shared by many services ({found})"
    );
    assert!(lookup(&mut registry, &hot[0])
        .iter()
        .any(|b| b.location() == Location::Local));
    assert!(lookup(&mut registry, &hot[0])
        .iter()
        .any(|b| b.location() == Location::Remote));

    // Withdraw a quarter (and a few agents never known), reroute a tenth (to the other
    // location, sometimes under another name, sometimes for an agent never known).
    for _ in 0..5_000 {
        let (agent, _) = known.swap_remove(rng.below(known.len()));
        registry.handle(Withdraw(agent), &mut Context::new());
    }
    registry.handle(Withdraw(AgentId::random()), &mut Context::new());
    for _ in 0..1_500 {
        let (agent, name) = known[rng.below(known.len())].clone();
        let renamed = if rng.below(10) == 0 {
            hot[rng.below(hot.len())].clone()
        } else {
            name
        };
        registry.handle(
            Reroute(binding_of(agent, &renamed, location(&mut rng))),
            &mut Context::new(),
        );
    }
    let stranger = binding_of(AgentId::random(), &hot[1], Location::Local);
    registry.handle(Reroute(stranger), &mut Context::new());
    check_lookups(&mut registry, &names);

    // Announced again: withdrawn then registered (now the newest), or registered again
    // while still known (the entry is replaced, possibly under another name).
    for _ in 0..1_000 {
        let (agent, name) = known[rng.below(known.len())].clone();
        if rng.below(2) == 0 {
            registry.handle(Withdraw(agent), &mut Context::new());
        }
        let name = if rng.below(4) == 0 {
            hot[rng.below(hot.len())].clone()
        } else {
            name
        };
        register(&mut registry, agent, &name, location(&mut rng));
    }
    check_lookups(&mut registry, &names);

    // Nothing is left behind once every service is withdrawn.
    for agent in registry
        .agents
        .values()
        .map(|e| e.binding.agent())
        .collect::<Vec<_>>()
    {
        registry.handle(Withdraw(agent), &mut Context::new());
    }
    assert_eq!(check_lookups(&mut registry, &names), 0);
    assert!(registry.by_name.0.is_empty());
}

#[test]
fn subscriptions_by_name_replay_in_lookup_order() {
    let name = ServiceName::new("worker").unwrap();
    let other = ServiceName::new("other").unwrap();
    let mut registry = Registry::new();
    for i in 0..60 {
        let location = if i % 3 == 0 {
            Location::Local
        } else {
            Location::Remote
        };
        let name = if i % 4 == 0 { &other } else { &name };
        let binding = binding_of(AgentId::random(), name, location);
        registry.handle(
            Register {
                binding,
                groups: Vec::new(),
            },
            &mut Context::new(),
        );
    }
    let inbox = Inbox::new(16);
    let subscribe = Subscribe {
        subscriber: AgentId::random(),
        inbox: inbox.clone(),
        watch: Watch::Name(name.clone()),
        by: WatchedBy::Service,
        known: None,
    };
    registry.handle(subscribe, &mut Context::new());
    let replayed: Vec<Binding> = inbox
        .close()
        .into_iter()
        .map(|delivery| match delivery {
            Delivery::Registry { event, .. } => {
                assert_eq!((event.status, event.group), (Status::Available, None));
                event.binding
            }
            _ => panic!("only registry events are delivered"),
        })
        .collect();
    let expected = linear(&registry, &name);
    assert_eq!(expected.len(), 45);
    assert_eq!(described(&replayed), described(&expected));
}
