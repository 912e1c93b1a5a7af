pub mod es;
