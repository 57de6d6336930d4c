//! One test binary for the HTTP API: every test starts its own server on a random port with a
//! fresh database and talks real HTTP to it.

mod browser;
mod catalogue;
mod cli;
mod demo;
mod durability;
mod events;
mod helpers;
mod hostile;
mod ingest;
mod openapi;
mod ordering;
mod runs;
mod scaleout;
mod security;
mod seeds;
mod services_tls;
mod sessions;
mod simulations;
mod streams;
mod tls;
mod verify;
