//! The host vocabulary shared by engine, store, batch and console: what they all mean by "these hosts".

pub mod select;
