//! Building blocks that keep the typed models open to what the platforms add later.
//!
//! LINE and Meta add event types, message types and enum values without notice. Every closed
//! set in the models is therefore either an [`open_enum!`] (a string enum with an `Unknown(String)`
//! variant) or a tagged enum whose last variant is [`Unknown`], which keeps the JSON verbatim.

use serde::de::DeserializeOwned;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON object whose type this version of the models does not know, kept as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    /// The discriminator that was not recognised (the `type` value, or for Meta messaging
    /// events the name of the field that carries the event), empty when there was none.
    pub kind: String,
    /// The whole object, unknown fields included.
    pub raw: Value,
}

impl Unknown {
    pub(crate) fn new(kind: impl Into<String>, raw: &Value) -> Self {
        Self {
            kind: kind.into(),
            raw: raw.clone(),
        }
    }
}

/// Declares a string enum that keeps values it does not know in `Unknown(String)`.
///
/// Deserialising never fails on an unexpected string, so a new enum value from a platform cannot
/// make an event unreadable.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// The value as the platform spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::from(text.as_ref()))
            }
        }
    };
}
pub(crate) use open_enum;

/// The string at `value[field]`, if there is one.
pub(crate) fn str_field<'v>(value: &'v Value, field: &str) -> Option<&'v str> {
    value.get(field).and_then(Value::as_str)
}

/// The JSON kind of a value, for errors that must not quote it.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// True when JSON text is an object. Checked before reading a struct from text: serde reads a
/// struct from an array by position, which would make an array's first element an id.
pub(crate) fn is_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// A struct read from JSON text that is an object; the default for anything else.
pub(crate) fn object_or_default<T: DeserializeOwned + Default>(json: &str) -> T {
    if is_object(json.as_bytes()) {
        serde_json::from_str(json).unwrap_or_default()
    } else {
        T::default()
    }
}

/// A struct read from JSON text that must be an object.
pub(crate) fn object<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    if is_object(json.as_bytes()) {
        serde_json::from_str(json)
    } else {
        Err(serde::de::Error::custom("expected a JSON object"))
    }
}

/// `T` read only from a JSON object, in the same pass as the text around it: serde reads a
/// struct from an array too (by position), which a body's envelope must not allow. Reading each
/// object as `RawValue` first and then as `T` validated it twice.
#[derive(Debug)]
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(Only(std::marker::PhantomData))
    }
}

/// Readers for a strict first reading of a head: serde in one pass over the text, each field of
/// the one type the platform documents, strings borrowed where they hold no escape. A strict
/// reading that succeeds is one of the lenient readings' (a string is a string to both); one
/// that fails sends the caller to the lenient reading.
pub(crate) mod strict {
    use serde::{Deserialize, Deserializer};
    use std::borrow::Cow;

    /// A JSON string, borrowed from the text unless it holds an escape. (`Option<Cow<str>>`
    /// never borrows: serde borrows only a `Cow` that is a field itself.)
    pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
                type Value = Text<'a>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'a>, E> {
                    Ok(Text(Cow::Borrowed(text)))
                }
                fn visit_str<E>(self, text: &str) -> Result<Text<'a>, E> {
                    Ok(Text(Cow::Owned(text.to_owned())))
                }
                fn visit_string<E>(self, text: String) -> Result<Text<'a>, E> {
                    Ok(Text(Cow::Owned(text)))
                }
            }
            deserializer.deserialize_str(Visitor(std::marker::PhantomData))
        }
    }

    /// Any JSON value that serde reads into a `serde_json::Value` at any depth a head is read
    /// at, without building it. The lenient readings read each nested object as a `Value`
    /// first, which refuses what a skip accepts: a number beyond `f64`, an unpaired surrogate
    /// escape, nesting beyond 128 levels. The value is skipped as raw text (no escape decoded)
    /// and accepted only when its text plainly holds none of those ([`plain`]); any other value
    /// fails the strict reading, and the lenient readings decide.
    pub(crate) struct Checked;

    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let raw = <&'de serde_json::value::RawValue>::deserialize(deserializer)?;
            if plain(raw.get().as_bytes()) {
                Ok(Checked)
            } else {
                Err(serde::de::Error::custom("a value for the careful reading"))
            }
        }
    }

    /// Whether the escape at `at` is `\uD800`–`\uDBFF` (`Some(true)`, a high surrogate) or
    /// `\uDC00`–`\uDFFF` (`Some(false)`); `None` for any other escape.
    fn surrogate(text: &[u8], at: usize) -> Option<bool> {
        match text.get(at..at + 4)? {
            [
                b'\\',
                b'u',
                b'd' | b'D',
                b'8'..=b'9' | b'a' | b'b' | b'A' | b'B',
            ] => Some(true),
            [b'\\', b'u', b'd' | b'D', b'c'..=b'f' | b'C'..=b'F'] => Some(false),
            _ => None,
        }
    }

    /// Nesting a [`Checked`] value may have: heads sit a few levels deep, so a value within
    /// this is far inside serde's 128 levels.
    const PLAIN_DEPTH: usize = 32;

    /// Whether validated JSON text holds no escape of a surrogate but in a pair, no number
    /// with an exponent or of more than 300 characters (the only ones that can lie beyond
    /// `f64`), and no nesting beyond [`PLAIN_DEPTH`]: such a value reads as a `Value` wherever
    /// a head is read.
    pub(crate) fn plain(text: &[u8]) -> bool {
        let mut depth = 0usize;
        let mut at = 0;
        while let Some(&byte) = text.get(at) {
            match byte {
                b'"' => {
                    at += 1;
                    loop {
                        let Some(next) = memchr::memchr2(b'"', b'\\', &text[at..]) else {
                            return false;
                        };
                        at += next;
                        if text[at] == b'"' {
                            at += 1;
                            break;
                        }
                        match surrogate(text, at) {
                            // A high surrogate and a low one: one character (an emoji).
                            Some(true) if surrogate(text, at + 6) == Some(false) => at += 12,
                            Some(_) => return false,
                            None => at += 2,
                        }
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > PLAIN_DEPTH {
                        return false;
                    }
                    at += 1;
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    at += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let length = text[at..]
                        .iter()
                        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                        .unwrap_or(text.len() - at);
                    let number = &text[at..at + length];
                    if length > 300 || number.iter().any(|b| matches!(b, b'e' | b'E')) {
                        return false;
                    }
                    at += length;
                }
                _ => at += 1,
            }
        }
        true
    }

    /// A struct read strictly from a JSON object only (an array is refused: serde would read a
    /// struct from it by position), each named member of its one type, a member named twice
    /// refused, every other member [`Checked`].
    macro_rules! object {
        (struct $name:ident<$a:lifetime> { $( $field:ident: $ty:ty = $key:literal ),+ $(,)? }) => {
            struct $name<$a> {
                $( $field: Option<$ty>, )+
                _text: std::marker::PhantomData<&$a str>,
            }

            impl<'de: $a, $a> serde::Deserialize<'de> for $name<$a> {
                fn deserialize<D: serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<Self, D::Error> {
                    struct Visitor<$a>(std::marker::PhantomData<&$a str>);
                    impl<'de: $a, $a> serde::de::Visitor<'de> for Visitor<$a> {
                        type Value = $name<$a>;
                        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                            f.write_str("a JSON object")
                        }
                        fn visit_map<M: serde::de::MapAccess<'de>>(
                            self,
                            mut map: M,
                        ) -> Result<Self::Value, M::Error> {
                            $( let mut $field: Option<Option<$ty>> = None; )+
                            while let Some(key) =
                                map.next_key::<$crate::compat::strict::Text<'_>>()?
                            {
                                match &*key.0 {
                                    $( $key => {
                                        if $field.is_some() {
                                            return Err(<M::Error as serde::de::Error>::duplicate_field($key));
                                        }
                                        $field = Some(map.next_value()?);
                                    } )+
                                    _ => {
                                        map.next_value::<$crate::compat::strict::Checked>()?;
                                    }
                                }
                            }
                            Ok($name {
                                $( $field: $field.flatten(), )+
                                _text: std::marker::PhantomData,
                            })
                        }
                    }
                    deserializer.deserialize_map(Visitor(std::marker::PhantomData))
                }
            }
        };
    }
    pub(crate) use object;

    /// A whole number given as an integer or as a numeric string (WhatsApp's timestamps), read
    /// as [`super::lenient::number`] reads those two; any other number is refused.
    pub(crate) struct Whole(pub(crate) Option<i64>);

    impl<'de> Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Whole;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an integer or a numeric string")
                }
                fn visit_i64<E>(self, number: i64) -> Result<Whole, E> {
                    Ok(Whole(Some(number)))
                }
                fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Whole, E> {
                    i64::try_from(number)
                        .map(|number| Whole(Some(number)))
                        .map_err(|_| E::custom("beyond i64"))
                }
                fn visit_str<E>(self, text: &str) -> Result<Whole, E> {
                    Ok(Whole(super::lenient::whole_number_text(text)))
                }
            }
            deserializer.deserialize_any(Visitor)
        }
    }

    /// The owned string of an optional [`Text`].
    pub(crate) fn owned(text: Option<Text<'_>>) -> Option<String> {
        text.map(|text| text.0.into_owned())
    }
}

/// Deserialises a whole value first, for enums whose variant depends on a field's value.
pub(crate) fn buffered<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(D::Error::custom("expected a JSON object"))
    }
}

/// An identifier that Meta sends sometimes as a string and sometimes as a number
/// (`app_id`, `new_owner_app_id`): always read as a string.
pub(crate) fn flexible_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        // The kind, never the value: errors are logged.
        Some(other) => Err(D::Error::custom(format!(
            "expected an id as a string or number, found {}",
            kind_of(&other)
        ))),
    }
}

/// Lenient field readers, for `#[serde(default, deserialize_with = "lenient::…")]`: a field that
/// is absent, `null` or of an unexpected shape reads as absent (`None`, empty, `false`), never as
/// an error of the event. The platforms omit fields their specs call required, send numbers as
/// strings, and add shapes nobody has seen yet; what is present and fits is typed.
pub(crate) mod lenient {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// Any type but a list, absent when it does not fit. An array is always absent: serde reads
    /// a struct from an array by position, which made an array's first element an id.
    pub(crate) fn option<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Array(_)) => None,
            Some(value) => T::deserialize(value).ok(),
        })
    }

    /// A whole number given as a number (integer or float) or as a numeric string.
    pub(crate) fn number<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        Ok(Option::<Value>::deserialize(deserializer)?
            .as_ref()
            .and_then(whole_number))
    }

    /// A number given as a number or as a numeric string.
    pub(crate) fn float<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// An id given as a string or a number, as a string.
    pub(crate) fn id<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            Some(Value::String(text)) => Some(text),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        })
    }

    /// A list whose elements that do not fit are left out; anything but a list reads as empty.
    pub(crate) fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|item| T::deserialize(item).ok())
                .collect(),
            _ => Vec::new(),
        })
    }

    /// A flag given as a boolean or as `"true"`/`"false"`; absent is `false`.
    pub(crate) fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        })
    }

    /// The whole-number reading shared by the typed models and the ingress's heads, so that the
    /// two agree on every field they both read.
    pub(crate) fn whole_number(value: &Value) -> Option<i64> {
        match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            }),
            Value::String(s) => whole_number_text(s),
            _ => None,
        }
    }

    /// [`whole_number`] of a numeric string.
    pub(crate) fn whole_number_text(s: &str) -> Option<i64> {
        s.trim().parse::<i64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f as i64)
        })
    }

    /// The field `name` of `value`, typed if it fits.
    pub(crate) fn field<T: DeserializeOwned>(value: &Value, name: &str) -> Option<T> {
        value.get(name).and_then(|v| T::deserialize(v).ok())
    }
}
