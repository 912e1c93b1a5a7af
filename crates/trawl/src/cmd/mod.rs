pub mod cat;
pub mod demo;
pub mod generate;
pub mod info;
pub mod merge;
pub mod read;
pub mod slice;
