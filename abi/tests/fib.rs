//! The forwarding table's entries and walk (`msee_abi::fib`).
use msee_abi::{ROUTE_LOCAL, ROUTE_NONE, ROUTE_OUT_OF_REACH, Route, fib::*};

#[test]
fn leaves_keep_route_and_prefix_length() {
    for (group, flags, plen) in [
        (0, 0, 0),
        (65535, ROUTE_OUT_OF_REACH, 32),
        (7, ROUTE_LOCAL, 128),
        (1234, ROUTE_LOCAL | ROUTE_OUT_OF_REACH, 24),
    ] {
        let leaf = fib_leaf(Route { group, flags }, plen);
        assert_eq!(leaf & FIB_CHILD, 0);
        assert_ne!(leaf & FIB_PRESENT, 0);
        assert_eq!(fib_route(leaf), Route { group, flags });
        assert_eq!(fib_plen(leaf), plen);
    }
    assert_eq!(fib_route(0).flags, ROUTE_NONE);
}

#[test]
fn shapes() {
    assert_eq!(FIB_V4.levels(), 2);
    assert_eq!(FIB_V4.node_bytes(), 1024);
    assert_eq!(FIB_V4.root_nodes(), 256);
    assert_eq!(FIB_V6.levels(), 29);
    assert_eq!(FIB_V6.node_bytes(), 64);
    assert_eq!(FIB_V6.root_nodes(), 256);
    assert_eq!(size_of::<FibNodeV4>(), 1024);
    assert_eq!(size_of::<FibNodeV6>(), 64);
    assert_eq!(FIB_V4.level_end(0), 24);
    assert_eq!(FIB_V4.level_end(1), 32);
    assert_eq!(fib_root_entry(&FIB_V4, 2, 0x0a01), (2 * 256 + 0x0a, 1));
    assert_eq!(fib_domain_word(3, FIB_SERVES_V4) & FIB_SLOT_MASK, 3);
}

#[test]
fn a_walk_stops_at_the_first_leaf() {
    let nodes: [FibNodeV6; 3] = [
        core::array::from_fn(|i| if i == 5 { FIB_CHILD | 1 } else { 0 }),
        core::array::from_fn(|i| {
            if i == 2 {
                FIB_CHILD | 2
            } else {
                fib_leaf(Route::default(), 8)
            }
        }),
        [fib_leaf(Route { group: 9, flags: 0 }, 30); 16],
    ];
    let node = |i: u32, j: usize| nodes.get(i as usize).map(|n| n[j]);
    let nibbles = [5, 2, 11];
    let walk = |e, levels| fib_walk(e, levels, |l| nibbles[l as usize], node);
    assert_eq!(
        walk(FIB_CHILD, 3),
        Some(fib_leaf(Route { group: 9, flags: 0 }, 30))
    );
    assert_eq!(
        walk(FIB_CHILD, 2),
        None,
        "still a child after the last level"
    );
    assert_eq!(walk(FIB_CHILD | 7, 3), None, "a node past the map");
    assert_eq!(walk(42, 3), Some(42), "a root leaf");
}
