//! The lab's plan before anything is built: link numbering, addresses and gateways, and the
//! checks on what a test asked for.

use super::*;

/// Numbers the links: client-r1, r1-r2, ..., then one per server, in the builder's order.
pub(super) fn plan_links(builder: &LabBuilder) -> Vec<LinkPlan> {
    let mut links = Vec::new();
    let link_v4 = |k: usize, host: u8| Ipv4Addr::new(10, 200, k as u8, host);
    let link_v6 = |k: usize, host: u16| Ipv6Addr::new(0xfd00, 0x200, k as u16, 0, 0, 0, 0, host);
    for (k, router) in builder.routers.iter().enumerate() {
        let up = if k == 0 {
            CLIENT.to_string()
        } else {
            builder.routers[k - 1].name.clone()
        };
        links.push(LinkPlan {
            up,
            down: router.name.clone(),
            up_v4: link_v4(k, 1),
            down_v4: router.v4,
            up_v6: link_v6(k, 1),
            down_v6: router.v6.unwrap_or(link_v6(k, 2)),
            delay: router.delay,
        });
    }
    for server in &builder.servers {
        let k = links.len();
        let up = server
            .behind
            .clone()
            .unwrap_or_else(|| builder.routers[builder.routers.len() - 1].name.clone());
        links.push(LinkPlan {
            up,
            down: server.name.clone(),
            up_v4: link_v4(k, 1),
            down_v4: link_v4(k, 2),
            up_v6: link_v6(k, 1),
            down_v6: link_v6(k, 2),
            delay: server.delay,
        });
    }
    links
}

pub(super) fn validate(builder: &LabBuilder) {
    assert!(
        builder.routers.len() >= 2,
        "a lab needs a chain of at least two routers"
    );
    assert!(
        !builder.servers.is_empty(),
        "a lab needs at least one server"
    );
    assert!(
        builder.routers.len() + builder.servers.len() < 250,
        "too many links to number as 10.200.k.0"
    );
    let names: Vec<&str> = std::iter::once(CLIENT)
        .chain(builder.routers.iter().map(|r| r.name.as_str()))
        .chain(builder.servers.iter().map(|s| s.name.as_str()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        assert!(
            !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "node name {name:?} must be 1-{MAX_NAME} of a-z, 0-9, -"
        );
        assert!(!names[..i].contains(name), "node name {name} is used twice");
    }
    for server in &builder.servers {
        assert!(
            !server.addrs.is_empty(),
            "server {} has no address",
            server.name
        );
        if let Some(router) = &server.behind {
            assert!(
                builder.routers.iter().any(|r| &r.name == router),
                "server {} is behind unknown router {router}",
                server.name
            );
        }
    }
}

pub(super) fn router_addrs(router: &RouterSpec) -> Vec<IpAddr> {
    std::iter::once(IpAddr::V4(router.v4))
        .chain(router.v6.map(IpAddr::V6))
        .collect()
}

/// The address at the other end of `link`, seen from its upstream end (`from_down == false`) or
/// from its downstream end.
pub(super) fn gateway(link: &LinkPlan, v6: bool, from_down: bool) -> IpAddr {
    match (v6, from_down) {
        (false, false) => IpAddr::V4(link.down_v4),
        (false, true) => IpAddr::V4(link.up_v4),
        (true, false) => IpAddr::V6(link.down_v6),
        (true, true) => IpAddr::V6(link.up_v6),
    }
}

pub(super) fn parse_addr(literal: &str) -> IpAddr {
    literal
        .parse()
        .unwrap_or_else(|e| panic!("{literal:?} is not an address literal: {e}"))
}

pub(super) fn prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}
