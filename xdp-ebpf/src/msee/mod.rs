//! The pure side of the `msee` program (`src/bin/msee/`): per stage, the
//! header and table arithmetic that needs no map and no program context,
//! so that it is unit-tested on the host. The program's own modules hold the
//! rest of each stage, its map lookups and packet access: `parse` serves
//! its `attachment` (and the IPv6 walk its `l3`), `route` and `flow` its
//! `l3`, `police`, `rewrite` and `icmp` their namesakes; `link` is the
//! whole link choice, the `GROUPS` lookup passed in.
//!
//! Everything here is `#[inline(always)]` (or generic, so the program
//! instantiates it) unless marked otherwise: the program is built from it
//! as if it were written in place.

pub mod flow;
pub mod frame;
pub mod icmp;
pub mod link;
pub mod parse;
pub mod police;
pub mod rewrite;
pub mod route;
