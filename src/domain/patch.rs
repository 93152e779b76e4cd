//! A change to one optional field, as the API says it: absent keeps, null clears.

/// A change to one optional field: leave it, clear it, or set it.
#[derive(Debug, Clone, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn touched(&self) -> bool {
        !matches!(self, Self::Keep)
    }
}
