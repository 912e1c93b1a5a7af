//! Flow records out of the flow engine (`trawl-flow`): their form, the files they are written to,
//! and the places they are sent.

pub mod es;
pub mod ipfix;
pub mod record;
