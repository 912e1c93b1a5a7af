pub mod ipfix;
