//! The schematic document (`pkg/schematic` in siderolabs/image-factory),
//! limited to the parts this project sets.

use serde::{Deserialize, Serialize};

use crate::FactoryError;

/// What a machine's boot image is customised with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Customization {
    /// Appended to the kernel command line, e.g. `talos.config=…`.
    pub extra_kernel_args: Vec<String>,
    /// Official extension names, e.g. `siderolabs/iscsi-tools`.
    pub system_extensions: Vec<String>,
}

/// The wire document. Separate from [`Customization`] so the public type
/// stays flat while the YAML keeps the factory's nesting and camelCase.
/// Unknown fields are rejected like the real factory does, which also keeps
/// a typo from silently producing a different image.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Schematic {
    #[serde(default)]
    customization: SchematicCustomization,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SchematicCustomization {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extra_kernel_args: Vec<String>,
    #[serde(default, skip_serializing_if = "SystemExtensions::is_empty")]
    system_extensions: SystemExtensions,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SystemExtensions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    official_extensions: Vec<String>,
}

impl SystemExtensions {
    fn is_empty(&self) -> bool {
        self.official_extensions.is_empty()
    }
}

impl Customization {
    /// The schematic YAML document the factory expects. Empty lists are
    /// omitted so that, as with the factory, "nothing" has one spelling and
    /// therefore one schematic id.
    pub fn to_yaml(&self) -> Result<String, FactoryError> {
        let doc = Schematic {
            customization: SchematicCustomization {
                extra_kernel_args: self.extra_kernel_args.clone(),
                system_extensions: SystemExtensions {
                    official_extensions: self.system_extensions.clone(),
                },
            },
        };
        serde_norway::to_string(&doc).map_err(|e| FactoryError::Yaml(e.to_string()))
    }

    /// Parses a schematic document, rejecting unknown fields (the fake
    /// factory answers 400 for those, as the real one does).
    pub fn from_yaml(s: &str) -> Result<Self, FactoryError> {
        let doc: Schematic =
            serde_norway::from_str(s).map_err(|e| FactoryError::Yaml(e.to_string()))?;
        Ok(Self {
            extra_kernel_args: doc.customization.extra_kernel_args,
            system_extensions: doc.customization.system_extensions.official_extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn yaml_has_the_factory_shape() {
        let c = Customization {
            extra_kernel_args: vec![
                "talos.config=https://attest.example/api/v1/config?mac=${mac}".into(),
            ],
            system_extensions: vec!["siderolabs/iscsi-tools".into()],
        };
        let yaml = c.to_yaml().unwrap();
        let value: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(
            value["customization"]["extraKernelArgs"][0].as_str(),
            Some("talos.config=https://attest.example/api/v1/config?mac=${mac}")
        );
        assert_eq!(
            value["customization"]["systemExtensions"]["officialExtensions"][0].as_str(),
            Some("siderolabs/iscsi-tools")
        );
        assert_eq!(Customization::from_yaml(&yaml).unwrap(), c);
    }

    #[test]
    fn empty_lists_are_omitted() {
        let only_args = Customization {
            extra_kernel_args: vec!["console=ttyS0".into()],
            system_extensions: vec![],
        };
        let yaml = only_args.to_yaml().unwrap();
        assert!(!yaml.contains("systemExtensions"), "{yaml}");

        let nothing = Customization::default().to_yaml().unwrap();
        assert!(!nothing.contains("extraKernelArgs"), "{nothing}");
        assert_eq!(
            Customization::from_yaml(&nothing).unwrap(),
            Customization::default()
        );
    }

    #[test]
    fn unknown_fields_and_bad_yaml_are_rejected() {
        for bad in [
            "customization:\n  extraKernelArg:\n    - a\n",
            "customization:\n  systemExtensions:\n    unofficial: [x]\n",
            "custom: {}\n",
            "customization: [unclosed\n",
            "customization:\n  extraKernelArgs: 5\n",
        ] {
            let err = Customization::from_yaml(bad).unwrap_err();
            assert!(matches!(err, FactoryError::Yaml(_)), "{bad}: {err:?}");
        }
    }

    #[test]
    fn strings_that_look_like_other_types_survive() {
        let c = Customization {
            extra_kernel_args: vec!["yes".into(), "1.0".into(), "null".into(), "- x".into()],
            system_extensions: vec![],
        };
        assert_eq!(Customization::from_yaml(&c.to_yaml().unwrap()).unwrap(), c);
    }
}
