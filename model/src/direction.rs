//! Which of a CycleGAN's two generators translates: A to B or B to A.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A to B, with G_A.
    A2b,
    /// B to A, with G_B.
    B2a,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::A2b => "a2b",
            Direction::B2a => "b2a",
        }
    }

    /// The generator's name in a checkpoint (`G_A.safetensors`).
    pub fn network(self) -> &'static str {
        match self {
            Direction::A2b => "G_A",
            Direction::B2a => "G_B",
        }
    }

    /// The domain translated from: `A` for a2b (the `trainA` folder), `B` for b2a.
    pub fn source_domain(self) -> &'static str {
        match self {
            Direction::A2b => "A",
            Direction::B2a => "B",
        }
    }

    /// The discriminator judging what this direction makes (D_A judges domain B, what a2b makes).
    pub fn critic(self) -> &'static str {
        match self {
            Direction::A2b => "D_A",
            Direction::B2a => "D_B",
        }
    }

    /// `(source, target)` of the pair `(a, b)` in this direction.
    pub fn order<T>(self, a: T, b: T) -> (T, T) {
        match self {
            Direction::A2b => (a, b),
            Direction::B2a => (b, a),
        }
    }
}
