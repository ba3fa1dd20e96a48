//! Services from SDP as the store keeps them, each a console setting of its own: the catalogue
//! last fetched (rewritten by every fetch) and what the admin offers (only the console writes it),
//! so a fetch never undoes an admin's choice.

use super::{Store, StoreError};
use crate::domain::{Catalogue, Offered};

const CATALOGUE: &str = "services.catalogue.v1";
const OFFERED: &str = "services.offered.v1";

impl Store {
    pub fn catalogue(&self) -> Result<Catalogue, StoreError> {
        Ok(self.setting(CATALOGUE)?.unwrap_or_default())
    }

    pub fn put_catalogue(&self, catalogue: &Catalogue) -> Result<(), StoreError> {
        self.put_setting(CATALOGUE, catalogue)
    }

    pub fn offered(&self) -> Result<Offered, StoreError> {
        Ok(self.setting(OFFERED)?.unwrap_or_default())
    }

    pub fn put_offered(&self, offered: &Offered) -> Result<(), StoreError> {
        self.put_setting(OFFERED, offered)
    }
}
