//! VM-entry consistency checks (schema/checks.toml): what works on the rules the model holds
//! ([`crate::model::Checks`]): their expression language (`parse` -> `typeck` -> the typed
//! `model::expr`, all three private to the crate), an interpreter ([`eval`]) for tools that work
//! from the model (`vmcs-gen state check`) and the reference the generated checker is tested
//! against, and boundary mutations for differential tests ([`mutate`]).

pub mod eval;
pub mod mutate;
pub(crate) mod parse;
pub(crate) mod typeck;
