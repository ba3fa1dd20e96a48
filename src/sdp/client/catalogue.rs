//! SDP's categories and subcategories (§8), every page of each. They need the `setup` scope on
//! Cloud, so a refusal is this call's answer rather than SDP being away.

use serde::Deserialize;

use super::Calls;
use crate::sdp::SdpError;

/// A category or subcategory as SDP lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Lookup {
    #[serde(deserialize_with = "crate::sdp::dto::required_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub deleted: Option<bool>,
}

impl Lookup {
    /// Rows SDP marks deleted, or that have no name to show, are not offered.
    fn usable(&self) -> bool {
        self.deleted != Some(true) && self.name.as_deref().is_some_and(|n| !n.trim().is_empty())
    }
}

impl Calls<'_> {
    pub async fn categories(&self) -> Result<Vec<Lookup>, SdpError> {
        let rows: Vec<Lookup> = self
            .optional()
            .list_all("categories", &["categories"])
            .await?;
        Ok(rows.into_iter().filter(Lookup::usable).collect())
    }

    pub async fn subcategories(&self, category_id: &str) -> Result<Vec<Lookup>, SdpError> {
        let path = format!("categories/{category_id}/subcategories");
        let rows: Vec<Lookup> = self.optional().list_all(&path, &["subcategories"]).await?;
        Ok(rows.into_iter().filter(Lookup::usable).collect())
    }
}
