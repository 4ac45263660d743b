//! A configuration section declared once. [`section!`] takes each key's doc comment, name, type
//! and default, and makes the section's struct (a TOML table through serde, unknown keys refused,
//! missing ones defaulted), its `Default`, and a struct of command-line flags (clap), one
//! `--key-name` per key with the doc comment as its help, which sets the keys it was given. A new
//! setting is one line in one place; no list of keys is written twice.
//!
//! A key whose value is optional (`Option<T>`, absent from the TOML when unset) takes a flag of
//! type `T`: `key: Option<T> = None => T as Some`.

/// See the crate's documentation. The caller depends on `serde` and `clap`.
#[macro_export]
macro_rules! section {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, flags $flags:ident, heading $heading:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(=> $flag_ty:ty as $from_flag:path)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        #[doc = concat!("The command-line flags of [`", stringify!($name), "`]: `--key-name` for each `key_name`.")]
        #[derive(Debug, Clone, Default, ::clap::Args)]
        $vis struct $flags {
            $(
                $(#[doc = $doc])*
                #[arg(long, help_heading = $heading)]
                pub $field: Option<$crate::flag_type!($ty $(, $flag_ty)?)>,
            )*
        }

        impl $flags {
            /// Sets the keys whose flags were given.
            pub fn apply(&self, section: &mut $name) {
                $(
                    if let Some(value) = &self.$field {
                        section.$field = $crate::from_flag!(value.clone() $(, $from_flag)?);
                    }
                )*
            }

            /// Whether any of these flags was given.
            pub fn any(&self) -> bool {
                false $( || self.$field.is_some() )*
            }
        }
    };
}

/// The type of a key's flag: the key's own, or the one its declaration names.
#[doc(hidden)]
#[macro_export]
macro_rules! flag_type {
    ($ty:ty) => {
        $ty
    };
    ($ty:ty, $flag_ty:ty) => {
        $flag_ty
    };
}

/// A flag's value as the key's.
#[doc(hidden)]
#[macro_export]
macro_rules! from_flag {
    ($value:expr) => {
        $value
    };
    ($value:expr, $from_flag:path) => {
        $from_flag($value)
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use std::path::PathBuf;

    crate::section! {
        /// A test section.
        pub struct Demo, flags DemoFlags, heading "Demo" {
            /// Filters of the first layer.
            ngf: i64 = 64,
            /// Where the model is; none: the bundled one.
            model: Option<PathBuf> = None => PathBuf as Some,
            /// Run in real time.
            live: bool = false,
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: DemoFlags,
    }

    #[test]
    fn toml_defaults_flags_and_help_come_from_one_declaration() {
        let mut demo: Demo = toml::from_str("ngf = 32").unwrap();
        assert_eq!(demo, Demo { ngf: 32, ..Demo::default() });
        assert!(toml::from_str::<Demo>("ngff = 32").unwrap_err().to_string().contains("ngff"));

        let cli = Cli::try_parse_from(["demo", "--model", "g.onnx", "--live", "true"]).unwrap();
        assert!(cli.flags.any());
        cli.flags.apply(&mut demo);
        assert_eq!(demo, Demo { ngf: 32, model: Some("g.onnx".into()), live: true });
        assert!(!Cli::try_parse_from(["demo"]).unwrap().flags.any());

        let help = <Cli as clap::CommandFactory>::command().render_long_help().to_string();
        assert!(help.contains("--ngf") && help.contains("Filters of the first layer"), "{help}");
        assert!(help.contains("Demo:"), "{help}");
    }
}
