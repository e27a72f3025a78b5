//! `lab up --config`: the lab a whole estate needs, from its file — a
//! customer namespace per circuit (with FRR, BIRD or GoBGP as its router),
//! the provider's switch, the MSEE namespace running `msee-daemon`, a
//! namespace per VNet and the Microsoft edge.
pub mod build;
pub mod plan;
pub mod routers;

pub use build::{
    METRICS_ADDR, State, SwitchInstaller, daemon_state_dir, down, msee_args, pin_dir, restart_msee,
    state_dir, up,
};
pub use plan::{EstateLab, Pools, plan};
pub use routers::{CustomerRouter, Customers};
