//! trawl-bpf
