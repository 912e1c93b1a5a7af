//! What several of the server's test files share.

#[path = "../../../../tests/support/corpus.rs"]
mod corpus_dir;
pub use corpus_dir::corpus;
