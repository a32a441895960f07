//! Checkpoint shortcuts on [`Variables`]: `from_flax_bytes`, `to_flax_bytes`,
//! `from_safetensors`, `to_safetensors`.

use crate::error::Result;
use crate::variables::Variables;

impl Variables {
    /// Reads a Flax msgpack checkpoint (`flax.serialization.to_bytes(variables)`); see
    /// [`io::flax::from_bytes`](crate::io::flax::from_bytes).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// use nnjit::Variables;
    ///
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &ndarray::array![1.0f32])?;
    /// let back = Variables::from_flax_bytes(&vars.to_flax_bytes()?)?;
    /// assert!(back.bits_eq(&vars));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[cfg(feature = "flax-checkpoint")]
    pub fn from_flax_bytes(bytes: &[u8]) -> Result<Variables> {
        crate::io::flax::from_bytes(bytes)
    }

    /// Writes the bytes Flax's `to_bytes(variables)` writes for the same arrays; see
    /// [`io::flax::to_bytes`](crate::io::flax::to_bytes).
    ///
    /// ```
    /// let mut vars = nnjit::Variables::new();
    /// vars.insert("params/b", ndarray::arr1(&[0.0f32]).into_dyn())?;
    /// // {"params": {"b": ExtType(1, packb(((1,), "float32", b"\0\0\0\0")))}}
    /// assert_eq!(vars.to_flax_bytes()?, b"\x81\xa6params\x81\xa1b\xc7\x11\x01\x93\x91\x01\xa7float32\xc4\x04\0\0\0\0");
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[cfg(feature = "flax-checkpoint")]
    pub fn to_flax_bytes(&self) -> Result<Vec<u8>> {
        crate::io::flax::to_bytes(self)
    }

    /// Reads a safetensors file's bytes, tensor names being `/`-joined paths; see
    /// [`io::safetensors::load`](crate::io::safetensors::load).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// use nnjit::Variables;
    ///
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &ndarray::array![1.0f32])?;
    /// let back = Variables::from_safetensors(&vars.to_safetensors()?)?;
    /// assert!(back.bits_eq(&vars));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[cfg(feature = "safetensors")]
    pub fn from_safetensors(bytes: &[u8]) -> Result<Variables> {
        crate::io::safetensors::load(bytes)
    }

    /// Writes a safetensors file's bytes as Python's `safetensors` does; see
    /// [`io::safetensors::save`](crate::io::safetensors::save).
    ///
    /// ```
    /// let mut vars = nnjit::Variables::new();
    /// vars.insert("params/b", ndarray::arr1(&[0.0f32]).into_dyn())?;
    /// let bytes = vars.to_safetensors()?;
    /// assert!(bytes[8..].starts_with(br#"{"params/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[cfg(feature = "safetensors")]
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        crate::io::safetensors::save(self)
    }
}
