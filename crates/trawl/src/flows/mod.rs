//! Where flow records go besides files: Elasticsearch's bulk API and IPFIX collectors (the
//! records themselves are `trawl_flow::record`).

pub mod es;
pub mod ipfix;
