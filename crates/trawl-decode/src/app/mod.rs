//! Application layers: DNS over UDP and TCP port 53.

pub mod dns;
