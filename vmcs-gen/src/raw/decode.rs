//! Reading the schema's tables off toml's spanned values, without serde: each `[[table]]` entry
//! becomes a struct declared with [`schema_table!`], keeping every value's span, rejecting unknown
//! keys and reporting the first mistake of an entry at its key or value.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

/// A located decoding error: the span and the message.
pub type Error = (Range<usize>, String);

/// A value decoded from one spanned TOML value.
pub trait FromToml: Sized {
    /// Decode `value`.
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error>;

    /// The value of an absent key: an error unless the type is optional.
    fn missing(key: &str, table: Range<usize>) -> Result<Self, Error> {
        Err((table, format!("missing field `{key}`")))
    }
}

fn mismatch<T>(value: &Spanned<DeValue<'_>>, expected: &str) -> Result<T, Error> {
    let found = value.get_ref().type_str();
    Err((value.span(), format!("invalid type: {found}, expected {expected}")))
}

impl FromToml for String {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        match value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            _ => mismatch(&value, "a string"),
        }
    }
}

impl FromToml for i64 {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        match value.get_ref() {
            DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
                .map_err(|_| (value.span(), "integer out of range: it must fit in 64 bits (signed)".to_string())),
            _ => mismatch(&value, "an integer"),
        }
    }
}

impl FromToml for bool {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        match value.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => mismatch(&value, "a boolean"),
        }
    }
}

impl<T: FromToml> FromToml for Spanned<T> {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        let span = value.span();
        T::from_toml(value).map(|v| Spanned::new(span, v))
    }
}

impl<T: FromToml> FromToml for Option<T> {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        T::from_toml(value).map(Some)
    }
    fn missing(_: &str, _: Range<usize>) -> Result<Self, Error> {
        Ok(None)
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(items) => items.into_iter().map(T::from_toml).collect(),
            other => mismatch(&Spanned::new(span, other), "an array"),
        }
    }
}

impl<T: FromToml> FromToml for BTreeMap<String, T> {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, Error> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => {
                table.into_iter().map(|(k, v)| Ok((k.into_inner().into_owned(), T::from_toml(v)?))).collect()
            }
            other => mismatch(&Spanned::new(span, other), "a table"),
        }
    }
}

/// The entries of a table, for [`schema_table!`]: known keys only, each taken once.
pub struct Table<'a> {
    span: Range<usize>,
    entries: Vec<(Spanned<String>, Option<Spanned<DeValue<'a>>>)>,
}

impl<'a> Table<'a> {
    /// `value` as a table whose keys are all `expected`; else the error at the first other key (a
    /// misspelt key explains the missing one, so it comes first).
    pub fn new(value: Spanned<DeValue<'a>>, expected: &[&str]) -> Result<Self, Error> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(t) => {
                let entries = t
                    .into_iter()
                    .map(|(k, v)| {
                        let key_span = k.span();
                        (Spanned::new(key_span, k.into_inner().into_owned()), Some(v))
                    })
                    .collect();
                let table = Table { span, entries };
                table.unknown(expected)?;
                Ok(table)
            }
            other => mismatch(&Spanned::new(span, other), "a table"),
        }
    }

    /// Decode the value of `key`, or [`FromToml::missing`].
    pub fn take<T: FromToml>(&mut self, key: &str) -> Result<T, Error> {
        let found = self.entries.iter_mut().find(|(k, _)| k.get_ref() == key).and_then(|(_, v)| v.take());
        match found {
            Some(v) => T::from_toml(v),
            None => T::missing(key, self.span.clone()),
        }
    }

    fn unknown(&self, expected: &[&str]) -> Result<(), Error> {
        let Some((key, _)) = self.entries.iter().find(|(k, _)| !expected.contains(&k.get_ref().as_str())) else {
            return Ok(());
        };
        let message = match expected {
            [] => format!("unknown field `{}`, there are no fields", key.get_ref()),
            _ => {
                let list: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
                format!("unknown field `{}`, expected one of {}", key.get_ref(), list.join(", "))
            }
        };
        Err((key.span(), message))
    }
}

/// Declare a schema table: a struct with one member per key, and its [`FromToml`] decoding.
/// `member: Type` reads the key of the same name, `member as "key": Type` another one;
/// `= default` makes an absent key its type's default.
macro_rules! schema_table {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* $member:ident $(as $key:literal)? : $ty:ty $(= $default:ident)?),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name {
            $($(#[$fmeta])* pub $member: $ty,)*
        }

        impl $crate::raw::decode::FromToml for $name {
            fn from_toml(value: toml::Spanned<toml::de::DeValue<'_>>) -> Result<Self, $crate::raw::decode::Error> {
                #[allow(unused_mut, unused_variables)] // a table without keys takes none
                let mut table =
                    $crate::raw::decode::Table::new(value, &[$(schema_table!(@key $member $($key)?)),*])?;
                Ok($name {
                    $($member: schema_table!(@take table, schema_table!(@key $member $($key)?), $($default)?),)*
                })
            }
        }
    };
    (@key $member:ident) => { stringify!($member) };
    (@key $member:ident $key:literal) => { $key };
    (@take $table:ident, $key:expr, ) => { $table.take($key)? };
    (@take $table:ident, $key:expr, default) => { $table.take::<Option<_>>($key)?.unwrap_or_default() };
}
pub(crate) use schema_table;
