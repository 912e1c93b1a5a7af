//! trawl-merge
