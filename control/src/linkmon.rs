//! Carrier monitor: the kernel tells us (RTNLGRP_LINK multicast) the moment
//! a MSEE port's carrier or admin state changes, and the daemon flips that
//! link in the dataplane in one map write. Event-driven, no polling.
use std::collections::HashSet;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{RouteNetlinkMessage, link::LinkFlag};
use netlink_sys::{AsyncSocket as _, SocketAddr};
use tokio::sync::mpsc;

/// A port whose carrier changed: `up` is admin up and lower layer up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarrierEvent {
    pub ifindex: u32,
    pub up: bool,
}

/// Whether the flags of a link say it can carry traffic.
pub fn carrier_up(flags: &[LinkFlag]) -> bool {
    flags.contains(&LinkFlag::Up) && flags.contains(&LinkFlag::LowerUp)
}

/// Watch the links in `ifindexes` (in the current network namespace) and
/// send an event for each change of their carrier.
pub fn watch(ifindexes: HashSet<u32>) -> Result<mpsc::UnboundedReceiver<CarrierEvent>> {
    let (mut conn, _handle, mut messages) =
        rtnetlink::new_connection().context("opening an rtnetlink socket for link events")?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
        .context("subscribing to link events")?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Keep the handle (and with it the connection) alive with the task.
        let _handle = _handle;
        while let Some((msg, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = msg.payload
                && ifindexes.contains(&link.header.index)
            {
                let event = CarrierEvent {
                    ifindex: link.header.index,
                    up: carrier_up(&link.header.flags),
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_needs_admin_and_lower_up() {
        assert!(carrier_up(&[
            LinkFlag::Up,
            LinkFlag::Broadcast,
            LinkFlag::LowerUp,
            LinkFlag::Running
        ]));
        assert!(!carrier_up(&[LinkFlag::Up, LinkFlag::Broadcast]));
        assert!(!carrier_up(&[LinkFlag::LowerUp]));
    }
}
