//! `lab up --config`: the lab a whole estate needs, from its file — a
//! customer namespace per circuit (with FRR as its router), the provider's
//! switch, the MSEE namespace running `msee-daemon`, a namespace per VNet
//! and the Microsoft edge.
pub mod build;
pub mod plan;

pub use build::{CustomerRouter, State, SwitchInstaller, down, pin_dir, state_dir, up};
pub use plan::{EstateLab, Pools, frr_configs, plan};
