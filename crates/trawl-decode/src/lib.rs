//! trawl-decode
