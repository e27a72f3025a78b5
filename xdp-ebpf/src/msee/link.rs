//! Link choice: which link of a route's next-hop group carries a flow.

use msee_abi::{
    CACHED_GROUP_MISSING, DropReason, LINK_IS_UP, MAX_GROUP_MEMBERS, MAX_LINKS, MseeConfig,
    NextHopGroup, Resolved,
};

use crate::msee::flow::flow_pick;

/// Where a link's (or a link direction's) entries sit in `MseeConfig`.
/// Userspace checks every link id it writes (attachments, group members)
/// against `MAX_LINKS`, a power of two, so the mask never changes an id: it
/// is there for the verifier, which must see a bound on the very register
/// an access uses (LLVM may check one copy of an index and address with
/// another, spilled one).
#[inline(always)]
pub fn link_slot(link: u32) -> usize {
    (link & (MAX_LINKS - 1)) as usize
}

#[inline(always)]
pub fn link_dir_slot(index: u32) -> usize {
    (index & (2 * MAX_LINKS - 1)) as usize
}

const _: () = assert!(MAX_LINKS.is_power_of_two());

/// Pick the link for a flow: among members whose link is up, those with the
/// best (lowest) preference; among those, the flow hash decides. Groups of
/// one and two members (a circuit's own pair of links, the Azure side:
/// nearly every group) take a straight-line path on the destination cache's
/// copy of the group; larger groups the general loop on the group itself
/// (`groups`: the `GROUPS` map), which picks the same link for the same flow. Fails with no route (no such
/// group) or link down (no member up).
#[inline(always)]
pub fn choose_link<'g>(
    config: &MseeConfig,
    resolved: &Resolved,
    groups: impl FnOnce(u32) -> Option<&'g NextHopGroup>,
    flow_hash: impl FnOnce() -> u32,
) -> Result<u32, DropReason> {
    let [a, b] = resolved.group.members;
    match resolved.group.count {
        1 => link_up(config, a.link)
            .then_some(a.link)
            .ok_or(DropReason::LinkDown),
        2 => match (link_up(config, a.link), link_up(config, b.link)) {
            (true, true) if a.preference == b.preference => {
                Ok([a.link, b.link][flow_pick(flow_hash(), 2) as usize & 1])
            }
            (true, true) if b.preference < a.preference => Ok(b.link),
            (true, _) => Ok(a.link),
            (false, true) => Ok(b.link),
            (false, false) => Err(DropReason::LinkDown),
        },
        CACHED_GROUP_MISSING => Err(DropReason::NoRoute),
        _ => {
            let Some(group) = groups(resolved.route.group) else {
                return Err(DropReason::NoRoute);
            };
            choose_link_among(config, group, flow_hash()).ok_or(DropReason::LinkDown)
        }
    }
}

#[inline(always)]
pub fn link_up(config: &MseeConfig, link: u32) -> bool {
    config.link_up[link_slot(link)] == LINK_IS_UP
}

/// `choose_link` for any number of members.
#[inline(never)]
pub fn choose_link_among(config: &MseeConfig, group: &NextHopGroup, hash: u32) -> Option<u32> {
    let count = (group.count as usize).min(MAX_GROUP_MEMBERS);
    let mut best = u32::MAX;
    // Bit i: member i is up and has the best preference so far.
    let mut chosen = 0u32;
    let mut candidates = 0u32;
    for i in 0..MAX_GROUP_MEMBERS {
        if i >= count {
            break;
        }
        let m = group.members[i];
        if !link_up(config, m.link) {
            continue;
        }
        if m.preference < best {
            best = m.preference;
            chosen = 1 << i;
            candidates = 1;
        } else if m.preference == best {
            chosen |= 1 << i;
            candidates += 1;
        }
    }
    let mut pick = flow_pick(hash, candidates);
    for i in 0..MAX_GROUP_MEMBERS {
        if chosen & (1 << i) != 0 {
            if pick == 0 {
                return Some(group.members[i].link);
            }
            pick -= 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use msee_abi::{CachedGroup, GroupMember, LINK_DOWN, Route};

    use super::*;

    /// A config with links `up` up and every other link down.
    fn config(up: &[u32]) -> MseeConfig {
        let mut c = MseeConfig {
            route_epoch: 1,
            dscp: [[0; 64]; msee_abi::PEERING_KINDS],
            link_up: [LINK_DOWN; MAX_LINKS as usize],
            _pad: [0; 56],
            links: [Default::default(); MAX_LINKS as usize],
            policers: [Default::default(); 2 * MAX_LINKS as usize],
        };
        for &link in up {
            c.link_up[link as usize] = LINK_IS_UP;
        }
        c
    }

    fn member(link: u32, preference: u32) -> GroupMember {
        GroupMember { link, preference }
    }

    /// A route to group 9, whose first members the cache copied.
    fn cached(count: u32, members: [GroupMember; 2]) -> Resolved {
        Resolved {
            route: Route { group: 9, flags: 0 },
            group: CachedGroup { count, members },
        }
    }

    fn group(members: &[GroupMember]) -> NextHopGroup {
        let mut g = NextHopGroup {
            count: members.len() as u32,
            ..NextHopGroup::default()
        };
        g.members[..members.len()].copy_from_slice(members);
        g
    }

    /// `choose_link` for a group held only in the cache's copy.
    fn choose(config: &MseeConfig, resolved: &Resolved, hash: u32) -> Result<u32, DropReason> {
        choose_link(config, resolved, |_| None, || hash)
    }

    #[test]
    fn link_ids_index_within_the_tables() {
        assert_eq!(link_slot(5), 5);
        assert_eq!(link_slot(MAX_LINKS - 1), MAX_LINKS as usize - 1);
        assert_eq!(link_slot(MAX_LINKS + 3), 3);
        assert_eq!(link_dir_slot(2 * MAX_LINKS - 1), 2 * MAX_LINKS as usize - 1);
        assert_eq!(link_dir_slot(2 * MAX_LINKS + 1), 1);
        let c = config(&[3]);
        assert!(link_up(&c, 3));
        assert!(!link_up(&c, 4));
    }

    #[test]
    fn one_member_carries_everything_while_up() {
        let one = cached(1, [member(3, 0), member(0, 0)]);
        assert_eq!(choose(&config(&[3]), &one, 0), Ok(3));
        assert_eq!(choose(&config(&[3]), &one, u32::MAX), Ok(3));
        assert_eq!(choose(&config(&[0, 4]), &one, 0), Err(DropReason::LinkDown));
    }

    #[test]
    fn two_members_by_state_then_preference_then_flow() {
        let equal = cached(2, [member(1, 2), member(2, 2)]);
        let both = config(&[1, 2]);
        // Equal preferences: the hash's top bit picks.
        assert_eq!(choose(&both, &equal, 0x7fff_ffff), Ok(1));
        assert_eq!(choose(&both, &equal, 0x8000_0000), Ok(2));
        // A better (lower) preference wins, whichever comes first.
        for hash in [0, u32::MAX] {
            let b_better = cached(2, [member(1, 3), member(2, 2)]);
            assert_eq!(choose(&both, &b_better, hash), Ok(2));
            let a_better = cached(2, [member(1, 1), member(2, 2)]);
            assert_eq!(choose(&both, &a_better, hash), Ok(1));
            // A member down leaves the other, whatever the preferences.
            assert_eq!(choose(&config(&[2]), &a_better, hash), Ok(2));
            assert_eq!(choose(&config(&[1]), &b_better, hash), Ok(1));
            assert_eq!(
                choose(&config(&[]), &equal, hash),
                Err(DropReason::LinkDown)
            );
        }
    }

    #[test]
    fn the_flow_is_hashed_only_for_a_choice_among_equals() {
        let hashed = Cell::new(0);
        let hash = || {
            hashed.set(hashed.get() + 1);
            7
        };
        let both = config(&[1, 2]);
        let unequal = cached(2, [member(1, 1), member(2, 2)]);
        let _ = choose_link(&both, &unequal, |_| None, hash);
        let _ = choose_link(&both, &cached(1, [member(1, 0); 2]), |_| None, hash);
        let _ = choose_link(
            &config(&[1]),
            &cached(2, [member(1, 0), member(2, 0)]),
            |_| None,
            hash,
        );
        assert_eq!(hashed.get(), 0);
        let _ = choose_link(
            &both,
            &cached(2, [member(1, 0), member(2, 0)]),
            |_| None,
            hash,
        );
        assert_eq!(hashed.get(), 1);
    }

    #[test]
    fn larger_groups_are_read_whole() {
        let g = group(&[member(1, 5), member(2, 4), member(3, 4), member(4, 4)]);
        let resolved = cached(4, [member(1, 5), member(2, 4)]);
        let asked = Cell::new(None);
        let groups = |id| {
            asked.set(Some(id));
            Some(&g)
        };
        let c = config(&[1, 2, 3, 4]);
        // Three members share the best preference: thirds of the hash.
        assert_eq!(choose_link(&c, &resolved, groups, || 0), Ok(2));
        assert_eq!(asked.get(), Some(9), "the route's group");
        assert_eq!(
            choose_link(&c, &resolved, |_| Some(&g), || 0x6000_0000),
            Ok(3)
        );
        assert_eq!(choose_link(&c, &resolved, |_| Some(&g), || u32::MAX), Ok(4));
        // Down members drop out; the worse preference takes over when all
        // the best are down.
        let c = config(&[1, 3]);
        assert_eq!(choose_link(&c, &resolved, |_| Some(&g), || u32::MAX), Ok(3));
        let c = config(&[1]);
        assert_eq!(choose_link(&c, &resolved, |_| Some(&g), || 0), Ok(1));
        assert_eq!(
            choose_link(&config(&[]), &resolved, |_| Some(&g), || 0),
            Err(DropReason::LinkDown)
        );
        // The group gone from the map, or missing when cached: no route.
        assert_eq!(
            choose_link(&c, &resolved, |_| None, || 0),
            Err(DropReason::NoRoute)
        );
        let missing = cached(CACHED_GROUP_MISSING, [member(1, 0); 2]);
        assert_eq!(choose(&c, &missing, 0), Err(DropReason::NoRoute));
    }

    #[test]
    fn the_general_loop_agrees_with_the_pair_path() {
        // Every state and preference order of two members, over the hash
        // range: the cached pair's path and the loop on the whole group
        // pick the same link for the same flow.
        for up in [&[1, 2][..], &[1], &[2], &[]] {
            let c = config(up);
            for (pa, pb) in [(0, 0), (1, 2), (2, 1), (7, 7)] {
                let members = [member(1, pa), member(2, pb)];
                let g = group(&members);
                for i in 0..=64u64 {
                    let hash = (i * u64::from(u32::MAX) / 64) as u32;
                    assert_eq!(
                        choose(&c, &cached(2, members), hash).ok(),
                        choose_link_among(&c, &g, hash),
                        "up {up:?}, preferences {pa}/{pb}, hash {hash:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_loop_reads_no_more_than_the_group_holds() {
        // A count above MAX_GROUP_MEMBERS reads the members there are; a
        // count below leaves the rest alone, up or not.
        let mut g = group(&[member(1, 9), member(2, 9), member(3, 1), member(4, 1)]);
        let c = config(&[1, 2, 3, 4]);
        g.count = 100;
        assert_eq!(choose_link_among(&c, &g, 0), Some(3));
        g.count = 2;
        assert_eq!(choose_link_among(&c, &g, 0), Some(1));
        assert_eq!(choose_link_among(&c, &g, u32::MAX), Some(2));
        g.count = 0;
        assert_eq!(choose_link_among(&c, &g, 0), None);
    }
}
