//! trawl-bpfc
