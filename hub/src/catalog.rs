//! What the reference CycleGAN project (Zhu et al., pytorch-CycleGAN-and-pix2pix) publishes on
//! its server, by the names its download scripts take: unpaired datasets as zip files and
//! pretrained ResNet generators as `.pth` state dicts. The server speaks plain HTTP; a tampered
//! `.pth` can hold wrong weights but never runs code here (the model crate's restricted reader).
use cyclegan_model::Direction;

use crate::{Error, Result};

/// The reference server, as its `download_cyclegan_model.sh` and `download_cyclegan_dataset.sh`
/// name it.
pub const REFERENCE_SERVER: &str = "http://efrosgans.eecs.berkeley.edu/cyclegan";
/// Replaces [`REFERENCE_SERVER`] for every name (a mirror with the same layout, or a local copy).
pub const MIRROR_ENV: &str = "CYCLEGAN_MIRROR";
/// The side of the crops the published generators were trained on (the reference's `--crop_size`).
pub const TRAINING_RESOLUTION: u32 = 256;

/// The server every address is made from: [`MIRROR_ENV`] when set.
pub fn server() -> String {
    std::env::var(MIRROR_ENV).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| REFERENCE_SERVER.into())
}

/// An unpaired dataset: `trainA/`, `trainB/`, `testA/`, `testB/` of photos.
#[derive(Debug)]
pub struct Dataset {
    pub name: &'static str,
    /// What `trainA/` holds, e.g. `summer`.
    pub domain_a: &'static str,
    /// What `trainB/` holds, e.g. `winter`.
    pub domain_b: &'static str,
    /// Why the server does not have it, and where to get it instead.
    pub unavailable: Option<&'static str>,
}

impl Dataset {
    pub fn url(&self) -> String {
        format!("{}/datasets/{}.zip", server(), self.name)
    }
}

const fn dataset(name: &'static str, domain_a: &'static str, domain_b: &'static str) -> Dataset {
    Dataset { name, domain_a, domain_b, unavailable: None }
}

pub const DATASETS: &[Dataset] = &[
    dataset("apple2orange", "apple", "orange"),
    dataset("summer2winter_yosemite", "summer", "winter"),
    dataset("horse2zebra", "horse", "zebra"),
    dataset("monet2photo", "monet", "photo"),
    dataset("cezanne2photo", "cezanne", "photo"),
    dataset("ukiyoe2photo", "ukiyoe", "photo"),
    dataset("vangogh2photo", "vangogh", "photo"),
    dataset("maps", "satellite", "map"),
    Dataset {
        name: "cityscapes",
        domain_a: "photo",
        domain_b: "label",
        unavailable: Some(
            "its licence forbids redistribution: download gtFine and leftImg8bit from \
             https://www.cityscapes-dataset.com and arrange them as trainA (photos) and trainB (labels)",
        ),
    },
    dataset("facades", "photo", "label"),
    dataset("iphone2dslr_flower", "iphone", "dslr"),
];

/// A generator trained by the reference project on one of [`DATASETS`].
#[derive(Debug)]
pub struct Pretrained {
    pub name: &'static str,
    pub dataset: &'static str,
    /// Which of its CycleGAN's generators it is.
    pub direction: Direction,
}

impl Pretrained {
    pub fn url(&self) -> String {
        format!("{}/pretrained_models/{}.pth", server(), self.name)
    }

    /// The domains it translates from and to.
    pub fn domains(&self) -> (&'static str, &'static str) {
        let d = DATASETS.iter().find(|d| d.name == self.dataset).expect("every generator's dataset is listed");
        self.direction.order(d.domain_a, d.domain_b)
    }
}

const fn pretrained(name: &'static str, dataset: &'static str, direction: Direction) -> Pretrained {
    Pretrained { name, dataset, direction }
}

use Direction::{A2b, B2a};

pub const PRETRAINED: &[Pretrained] = &[
    pretrained("apple2orange", "apple2orange", A2b),
    pretrained("orange2apple", "apple2orange", B2a),
    pretrained("summer2winter_yosemite", "summer2winter_yosemite", A2b),
    pretrained("winter2summer_yosemite", "summer2winter_yosemite", B2a),
    pretrained("horse2zebra", "horse2zebra", A2b),
    pretrained("zebra2horse", "horse2zebra", B2a),
    pretrained("monet2photo", "monet2photo", A2b),
    pretrained("style_monet", "monet2photo", B2a),
    pretrained("style_cezanne", "cezanne2photo", B2a),
    pretrained("style_ukiyoe", "ukiyoe2photo", B2a),
    pretrained("style_vangogh", "vangogh2photo", B2a),
    pretrained("sat2map", "maps", A2b),
    pretrained("map2sat", "maps", B2a),
    pretrained("cityscapes_photo2label", "cityscapes", A2b),
    pretrained("cityscapes_label2photo", "cityscapes", B2a),
    pretrained("facades_photo2label", "facades", A2b),
    pretrained("facades_label2photo", "facades", B2a),
    pretrained("iphone2dslr_flower", "iphone2dslr_flower", A2b),
];

fn unknown(what: &'static str, name: &str, names: impl Iterator<Item = &'static str>) -> Error {
    Error::Unknown { what, name: name.into(), known: names.collect::<Vec<_>>().join(", ") }
}

pub fn pretrained_named(name: &str) -> Result<&'static Pretrained> {
    PRETRAINED
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| unknown("pretrained generator", name, PRETRAINED.iter().map(|p| p.name)))
}

/// A dataset the server has; one it does not have is an error saying where to get it.
pub fn dataset_named(name: &str) -> Result<&'static Dataset> {
    let d = DATASETS
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| unknown("dataset", name, DATASETS.iter().map(|d| d.name)))?;
    match d.unavailable {
        Some(why) => Err(Error::Invalid(format!("{name} is not on the reference server: {why}"))),
        None => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_generator_has_its_dataset() {
        for list in [PRETRAINED.iter().map(|p| p.name).collect::<Vec<_>>(), DATASETS.iter().map(|d| d.name).collect()] {
            let mut sorted = list.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len(), "{list:?}");
        }
        for p in PRETRAINED {
            let (from, to) = p.domains();
            // The reference names its generators FROM2TO or style_TO.
            let name = p.name.replace("sat", "satellite");
            assert!(name.contains(to) || p.name == format!("style_{to}"), "{}: {from} -> {to}", p.name);
        }
    }

    #[test]
    fn addresses_follow_the_reference_scripts_and_unknown_names_list_the_known() {
        let p = pretrained_named("summer2winter_yosemite").unwrap();
        assert_eq!(p.domains(), ("summer", "winter"));
        if std::env::var_os(MIRROR_ENV).is_none() {
            assert_eq!(p.url(), format!("{REFERENCE_SERVER}/pretrained_models/summer2winter_yosemite.pth"));
            assert_eq!(
                dataset_named("horse2zebra").unwrap().url(),
                format!("{REFERENCE_SERVER}/datasets/horse2zebra.zip")
            );
        }
        assert_eq!(pretrained_named("winter2summer_yosemite").unwrap().domains(), ("winter", "summer"));
        let e = pretrained_named("summer2autumn").unwrap_err().to_string();
        assert!(e.contains("summer2autumn") && e.contains("style_vangogh"), "{e}");
        let e = dataset_named("cityscapes").unwrap_err().to_string();
        assert!(e.contains("cityscapes-dataset.com"), "{e}");
    }
}
