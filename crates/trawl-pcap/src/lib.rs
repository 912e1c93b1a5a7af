//! trawl-pcap
