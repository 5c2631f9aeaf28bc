//! VM-entry consistency checks (schema/checks.toml): what works on the rules the model holds
//! ([`crate::model::Checks`]): their expression language ([`parse`] -> [`typeck`] -> the typed
//! [`crate::model::expr`]), an interpreter ([`eval`]) for tools that work from the model
//! (`vmcs-gen state check`) and the reference the generated checker is tested against, and
//! boundary mutations for differential tests ([`mutate`]).

pub mod eval;
pub mod mutate;
pub mod parse;
pub mod typeck;
